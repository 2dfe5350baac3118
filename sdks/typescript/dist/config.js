/**
 * Where the SDK connects and with which key, exactly as `oc` decides it: an explicit option,
 * else `OPENSANDBOX_API_URL` / `OPENSANDBOX_API_KEY`, else the `oc` config file
 * (`$OPENSANDBOX_CONFIG`, else `$XDG_CONFIG_HOME/opensandbox/config.toml` when absolute, else
 * `~/.config/opensandbox/config.toml`), else `http://127.0.0.1:8080` for the URL. Errors name
 * the file and line, never a value.
 */
import { readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { ConfigError } from "./errors.js";
export const DEFAULT_API_URL = "http://127.0.0.1:8080";
/** The `oc` config file's path for this environment, or undefined when none can be named. */
export function configPath(env) {
    const set = (name) => (env[name] ? env[name] : undefined);
    const explicit = set("OPENSANDBOX_CONFIG");
    if (explicit)
        return explicit;
    const xdg = set("XDG_CONFIG_HOME");
    if (xdg && isAbsolute(xdg))
        return join(xdg, "opensandbox", "config.toml");
    const home = set("HOME");
    return home ? join(home, ".config", "opensandbox", "config.toml") : undefined;
}
const LINE = /^\s*(api_url|api_key)\s*=\s*("(?:[^"\\]|\\.)*")\s*(#.*)?$/;
const KEY = /^\s*([A-Za-z0-9_-]+)\s*=/;
/** Parses the two-key file `osbd up` writes (basic strings, as `oc` reads them). */
export function parseConfig(path, text) {
    const out = {};
    text.split("\n").forEach((raw, index) => {
        const line = raw.replace(/\r$/, "");
        if (!line.trim() || line.trim().startsWith("#"))
            return;
        const match = LINE.exec(line);
        if (!match) {
            const key = KEY.exec(line)?.[1];
            if (key && key !== "api_url" && key !== "api_key") {
                throw new ConfigError(`${path}:${index + 1}: unknown key "${key}"; the file holds only api_url and api_key`);
            }
            throw new ConfigError(`${path}:${index + 1}: expected api_url = "…" or api_key = "…"`);
        }
        let value;
        try {
            value = JSON.parse(match[2]);
        }
        catch {
            throw new ConfigError(`${path}:${index + 1}: the value is not a valid quoted string`);
        }
        out[match[1]] = value;
    });
    return out;
}
function loadConfig(path) {
    let text;
    try {
        text = readFileSync(path, "utf8");
    }
    catch (error) {
        if (error.code === "ENOENT")
            return {};
        throw new ConfigError(`cannot read ${path}: ${error.code ?? "error"}`);
    }
    return parseConfig(path, text);
}
/** Explicit option > environment > config file (> default URL). */
export function resolveConnection(apiUrl, apiKey, env = process.env) {
    const nonBlank = (value) => (value && value.trim() ? value : undefined);
    const path = configPath(env);
    const file = path ? loadConfig(path) : {};
    const url = nonBlank(apiUrl) ?? nonBlank(env.OPENSANDBOX_API_URL) ?? nonBlank(file.api_url) ?? DEFAULT_API_URL;
    const key = nonBlank(apiKey) ?? nonBlank(env.OPENSANDBOX_API_KEY) ?? nonBlank(file.api_key);
    const connection = { apiUrl: url.replace(/\/+$/, "") };
    Object.defineProperty(connection, "apiKey", { value: key, enumerable: false });
    return connection;
}

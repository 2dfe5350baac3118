/**
 * Where the SDK connects and with which key, exactly as `oc` decides it: an explicit option,
 * else `OPENSANDBOX_API_URL` / `OPENSANDBOX_API_KEY`, else the `oc` config file
 * (`$OPENSANDBOX_CONFIG`, else `$XDG_CONFIG_HOME/opensandbox/config.toml` when absolute, else
 * `~/.config/opensandbox/config.toml`), else `http://127.0.0.1:8080` for the URL. Errors name
 * the file and line, never a value.
 */
export declare const DEFAULT_API_URL = "http://127.0.0.1:8080";
/** The resolved connection; `apiKey` is kept off enumeration so it is never printed. */
export interface Connection {
    readonly apiUrl: string;
    readonly apiKey: string | undefined;
}
type Env = Record<string, string | undefined>;
/** The `oc` config file's path for this environment, or undefined when none can be named. */
export declare function configPath(env: Env): string | undefined;
/** Parses the two-key file `osbd up` writes (basic strings, as `oc` reads them). */
export declare function parseConfig(path: string, text: string): {
    api_url?: string;
    api_key?: string;
};
/** Explicit option > environment > config file (> default URL). */
export declare function resolveConnection(apiUrl?: string, apiKey?: string, env?: Env): Connection;
export {};

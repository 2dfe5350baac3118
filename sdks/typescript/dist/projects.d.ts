/**
 * Projects: the `Projects` resource and the bound `Project` (update, replace, delete, and its
 * secrets). A secret value goes into one `setSecret` request body and nowhere else.
 */
import type { OpenSandbox, ProjectFields } from "./client.js";
import { Page } from "./http.js";
import { ProjectData, SecretInfo, SecretSet } from "./models.js";
/** A project bound to a client. */
export declare class Project implements ProjectData {
    #private;
    id: string;
    orgID: string;
    name: string;
    template: string | null;
    cpuCount: number;
    memoryMB: number;
    timeoutSec: number;
    egressAllowlist: string[];
    runtime: string;
    createdAt: string;
    updatedAt: string;
    constructor(client: OpenSandbox, data: unknown);
    static create(fields: ProjectFields & {
        name: string;
        client?: OpenSandbox;
    }): Promise<Project>;
    static get(reference: string, client?: OpenSandbox): Promise<Project>;
    static list(options?: {
        limit?: number;
        client?: OpenSandbox;
    }): AsyncGenerator<Project>;
    /** PATCH: fields given change, the rest stay (`egressAllowlist: []` clears it). */
    update(fields: ProjectFields & {
        name?: string;
    }): Promise<this>;
    /** PUT: the whole record; fields left out take their defaults (the name stays). */
    replace(fields: ProjectFields & {
        name?: string;
    }): Promise<this>;
    refresh(): Promise<this>;
    delete(): Promise<void>;
    /** Sets (creates or replaces) a secret: the value goes into this one request and nowhere else. */
    setSecret(name: string, value: string, options?: {
        allowedHosts?: string[];
    }): Promise<SecretSet>;
    /** Every secret's name, hosts and version (never values). */
    listSecrets(): Promise<SecretInfo[]>;
    deleteSecret(name: string): Promise<void>;
}
export declare class Projects {
    #private;
    constructor(client: OpenSandbox);
    create(fields: ProjectFields & {
        name: string;
    }): Promise<Project>;
    get(reference: string): Promise<Project>;
    list(options?: {
        limit?: number;
    }): AsyncGenerator<Project>;
    listPage(options?: {
        limit?: number;
        cursor?: string;
    }): Promise<Page<Project>>;
    update(reference: string, fields: ProjectFields & {
        name?: string;
    }): Promise<Project>;
    replace(reference: string, fields: ProjectFields & {
        name?: string;
    }): Promise<Project>;
    delete(reference: string): Promise<void>;
}

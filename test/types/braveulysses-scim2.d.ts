/** Types for @braveulysses/scim2 (a small SCIM 2 client library without its own), as the third-party client test uses it. */
declare module '@braveulysses/scim2' {
  export class Resource {
    constructor(data: Record<string, unknown>);
    data: Record<string, unknown>;
    id(): string;
    meta(): Record<string, unknown>;
    schemas(): string[];
    /** A value by path: `a.b`, `urn:…:attr`, or a value filter `emails[type eq "work"].value`. */
    get(path: string): unknown;
    set(path: string, value: unknown): void;
    /** The resource as a JSON string (a request body). */
    toJSON(): string;
    static fromJSON(json: string): Resource;
  }
  export const Constants: Record<string, string>;
  const scim2: { Resource: typeof Resource; Constants: Record<string, string> };
  export default scim2;
}

declare module '@braveulysses/scim2/dist/Patch.js' {
  export interface Operation {
    op: 'add' | 'remove' | 'replace';
    path?: string;
    value?: unknown;
  }
  /** A PatchOp message as a JSON string (a request body). */
  export function patchRequest(...operations: Operation[]): string;
  export function addOperation(path: string | null, value: unknown): Operation;
  export function removeOperation(path: string): Operation;
  export function replaceOperation(path: string | null, value: unknown): Operation;
}

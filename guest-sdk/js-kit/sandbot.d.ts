// Types of the Sandbot JavaScript kit (sandbot.js).
export class ActionError extends Error {
  constructor(code: string, message: string);
  code: string;
}
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export declare const session: {
  get(path: string): Json | undefined;
  set(path: string, value: Json): void;
  remove(path: string): void;
};
export type Level = "debug" | "info" | "warn" | "error";
export declare const conversation: {
  say(message: string | { type: string; config: Json }): void;
  goto(block: string): void;
  log(level: Level, text: string): void;
  info(text: string): void;
  warn(text: string): void;
};
export type Response =
  | { ok: true; status: number; statusText: string; headers: Record<string, string>; url: string; text(): string; json(): Json }
  | { ok: false; status: 0; error: string };
export declare const http: {
  fetch(url: string, init?: { method?: string; headers?: Record<string, string>; body?: string | Json; timeoutMs?: number }): Response;
};
export declare const budget: {
  remaining(): { fuel: number; wallMs: number; httpCalls: number; memoryBytes: number };
};
export declare function action(fn: (input: any) => Json | void): (input: string) => string;

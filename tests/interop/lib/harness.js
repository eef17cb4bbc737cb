// Test harness: users registered through the real client-server API,
// logged in with matrix-js-sdk the way Element does it, and helpers to wait
// for what a client sees through /sync.
import "../setup.js";

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";

import { ClientEvent, createClient, PendingEventOrdering, SyncState } from "matrix-js-sdk";
import { VerifierEvent } from "matrix-js-sdk/lib/crypto-api/index.js";
import { logger as sdkGlobalLogger } from "matrix-js-sdk/lib/logger.js";

export const BASE_URL = process.env.AXON_INTEROP_BASE_URL ?? "";
export const SERVER_NAME = process.env.AXON_INTEROP_SERVER_NAME ?? "interop.test";
const DEBUG = Boolean(process.env.INTEROP_DEBUG);

if (!BASE_URL) {
    throw new Error("AXON_INTEROP_BASE_URL is not set: run the suite with tests/interop/run.sh");
}

// Default wait for something to arrive through sync.
export const WAIT_MS = Number(process.env.INTEROP_WAIT_MS ?? 20000);

// The SDK's global logger is used where no client logger is at hand.
sdkGlobalLogger.setLevel?.(DEBUG ? "debug" : "silent");

function makeLogger(prefix) {
    const out = (level) => (...msg) => {
        if (DEBUG) console.error(`[${prefix}] ${level}`, ...msg);
    };
    const l = {
        trace: out("trace"),
        debug: out("debug"),
        info: out("info"),
        warn: out("warn"),
        error: out("error"),
        getChild: (ns) => makeLogger(`${prefix}:${ns}`),
    };
    return l;
}

/**
 * A fetch that keeps what a test needs to explain a failure: every /sync
 * request (when it started) and response body, every request the server
 * refused (method, path, status, body), and when each /keys/query started
 * and ended.
 */
function recordingFetch(rec) {
    return async (input, init = {}) => {
        const url = typeof input === "string" ? input : input.url ?? String(input);
        const method = init.method ?? "GET";
        const path = new URL(url).pathname;
        if (path.endsWith("/sync")) rec.syncRequests.push({ at: Date.now(), query: new URL(url).search });
        let keyQuery = null;
        if (path.endsWith("/keys/query")) rec.keyQueries.push((keyQuery = { start: Date.now(), end: 0 }));
        const res = await fetch(input, init).finally(() => {
            if (keyQuery) keyQuery.end = Date.now();
        });
        if (path.endsWith("/sync") && res.ok) {
            const body = await res.clone().json().catch(() => null);
            if (body) rec.syncs.push({ at: Date.now(), query: new URL(url).search, body });
        }
        if (!res.ok) {
            const text = await res.clone().text().catch(() => "");
            rec.errors.push({ method, path, status: res.status, body: text.slice(0, 500) });
        }
        return res;
    };
}

/** A raw client-server API call with an access token: status, parsed JSON (null if none) and text. */
export async function rawApi(token, method, path, body) {
    const res = await fetch(new URL(path, BASE_URL), {
        method,
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json = null;
    try {
        json = JSON.parse(text);
    } catch {
        // left null
    }
    return { status: res.status, json, text };
}

/**
 * Runs an SAS verification on both sides, each confirming the emoji it shows as a user would,
 * and returns the emoji each side showed (in the order they showed them).
 */
export async function verifyBySas(v1, v2) {
    const emoji = [];
    for (const v of [v1, v2]) {
        v.on(VerifierEvent.ShowSas, (sas) => {
            emoji.push(sas.sas.emoji?.map((e) => e[0]).join(""));
            sas.confirm();
        });
    }
    await Promise.all([v1.verify(), v2.verify()]);
    return emoji;
}

/**
 * Logs a user's device in with in-memory Rust crypto, starts it syncing, and waits until its
 * identity keys are on the server (before others look for them).
 */
export async function cryptoDevice(user, label, clientOpts = {}) {
    const d = await user.login(label, clientOpts);
    await d.client.initRustCrypto({ useIndexedDB: false });
    await d.start();
    await waitUntil(async () => {
        const res = await rawApi(d.accessToken, "POST", "/_matrix/client/v3/keys/query", { device_keys: { [d.userId]: [d.deviceId] } });
        return res.json?.device_keys?.[d.userId]?.[d.deviceId];
    }, `${label} uploaded its device keys`, { device: d });
    return d;
}

export function uniqueName(prefix) {
    return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`.toLowerCase();
}

async function postJSON(path, body, token) {
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(new URL(path, BASE_URL), { method: "POST", headers, body: JSON.stringify(body) });
    const text = await res.text();
    let json = null;
    try {
        json = JSON.parse(text);
    } catch {
        // left null: the caller reports the raw text
    }
    return { status: res.status, json, text };
}

/**
 * Registers localpart through POST /_matrix/client/v3/register with
 * m.login.dummy (open registration). A 401 that carries a session is
 * answered once more with that session, as the user-interactive auth API
 * allows.
 */
export async function registerUser(localpart, password) {
    const path = "/_matrix/client/v3/register";
    const body = {
        username: localpart,
        password,
        auth: { type: "m.login.dummy" },
        initial_device_display_name: "interop registration",
    };
    let res = await postJSON(path, body);
    if (res.status === 401 && res.json?.session) {
        body.auth = { type: "m.login.dummy", session: res.json.session };
        res = await postJSON(path, body);
    }
    assert.equal(
        res.status,
        200,
        `POST ${path} {username: ${localpart}, auth: m.login.dummy}: want 200, got ${res.status} ${res.text}`,
    );
    assert.equal(res.json.user_id, `@${localpart}:${SERVER_NAME}`, `register answered ${res.text}`);
    return res.json;
}

/**
 * Logs in with m.login.password and an m.id.user identifier through the SDK's
 * loginRequest, as Element does, and returns the login response.
 */
export async function passwordLogin(localpart, password, deviceName) {
    const bare = createClient({ baseUrl: BASE_URL, logger: makeLogger("login") });
    const res = await bare.loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: localpart },
        password,
        initial_device_display_name: deviceName,
    });
    return res;
}

/** Options Element Web passes to startClient (those that matter to a server). */
export const ELEMENT_START_OPTS = Object.freeze({
    initialSyncLimit: 20,
    lazyLoadMembers: true,
    pendingEventOrdering: PendingEventOrdering.Detached,
    threadSupport: true,
    clientWellKnownPollPeriod: 2 * 60 * 60,
});

/**
 * A logged-in device: an SDK client built from a login response, plus
 * records of its /sync responses and refused requests.
 */
export class Device {
    /** clientOpts are extra createClient options (e.g. cryptoCallbacks). */
    constructor(login, label, clientOpts = {}) {
        this.label = label;
        this.userId = login.user_id;
        this.deviceId = login.device_id;
        this.accessToken = login.access_token;
        this.rec = { syncs: [], syncRequests: [], errors: [], keyQueries: [] };
        this.client = createClient({
            baseUrl: BASE_URL,
            userId: login.user_id,
            deviceId: login.device_id,
            accessToken: login.access_token,
            logger: makeLogger(label),
            fetchFn: recordingFetch(this.rec),
            timelineSupport: true,
            ...clientOpts,
        });
        this.lastSyncError = null;
        this.client.on(ClientEvent.Sync, (state, _prev, data) => {
            if (state === SyncState.Error || state === SyncState.Reconnecting) {
                this.lastSyncError = data?.error ?? state;
            }
        });
    }

    /** Starts syncing and resolves once the SDK reports PREPARED. */
    async start(opts = {}) {
        const prepared = new Promise((resolve) => {
            const onSync = (state) => {
                if (state === SyncState.Prepared) {
                    this.client.off(ClientEvent.Sync, onSync);
                    resolve();
                }
            };
            this.client.on(ClientEvent.Sync, onSync);
        });
        await this.client.startClient({ ...ELEMENT_START_OPTS, ...opts });
        await withTimeout(prepared, WAIT_MS, () => `${this.label}: sync never reached PREPARED. ${this.diagnostics()}`);
        return this;
    }

    stop() {
        this.client.stopClient();
    }

    room(roomId) {
        return this.client.getRoom(roomId);
    }

    /** Resolves once a /sync long-poll (with since=) started after time t is in flight. */
    async longPolling(t = 0) {
        return waitUntil(
            () => this.rec.syncRequests.some((r) => r.at >= t && r.query.includes("since=")),
            `${this.label} long-polls /sync with a since token`,
            { device: this },
        );
    }

    /** Sync responses received after time t (ms since epoch). */
    syncsSince(t) {
        return this.rec.syncs.filter((s) => s.at >= t);
    }

    diagnostics() {
        const parts = [];
        if (this.lastSyncError) parts.push(`last sync error: ${describeError(this.lastSyncError)}`);
        if (this.rec.errors.length) {
            parts.push(
                "refused requests: " +
                    this.rec.errors
                        .slice(-8)
                        .map((e) => `${e.method} ${e.path} -> ${e.status} ${e.body}`)
                        .join(" | "),
            );
        }
        return parts.join("; ");
    }
}

function describeError(e) {
    if (!e) return "";
    if (e.httpStatus) return `HTTP ${e.httpStatus} ${e.errcode ?? ""} ${e.data ? JSON.stringify(e.data) : e.message}`;
    return e.message ?? String(e);
}

/** A user with a password; devices are logged in as needed. */
export class User {
    constructor(localpart, password) {
        this.localpart = localpart;
        this.password = password;
        this.userId = `@${localpart}:${SERVER_NAME}`;
        this.devices = [];
    }

    static async register(prefix) {
        const u = new User(uniqueName(prefix), `pw-${randomBytes(8).toString("hex")}`);
        await registerUser(u.localpart, u.password);
        return u;
    }

    /** Logs in a new device (password login) and returns it, not yet syncing. */
    async login(label = `${this.localpart}#${this.devices.length + 1}`, clientOpts = {}) {
        const res = await passwordLogin(this.localpart, this.password, label);
        const d = new Device(res, label, clientOpts);
        this.devices.push(d);
        return d;
    }

    /** Logs in a new device and waits for its first sync to be PREPARED. */
    async startDevice(opts = {}, label) {
        const d = await this.login(label);
        await d.start(opts);
        return d;
    }

    stopAll() {
        for (const d of this.devices) d.stop();
    }
}

export function withTimeout(promise, ms, message) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(typeof message === "function" ? message() : message)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Waits until check() returns a truthy value and returns it. check runs
 * every 50 ms against the client's local state, which changes only through
 * what the server sends.
 */
export async function waitUntil(check, describe, { timeout = WAIT_MS, device } = {}) {
    const deadline = Date.now() + timeout;
    let last;
    for (;;) {
        try {
            last = await check();
        } catch (e) {
            last = undefined;
            if (Date.now() >= deadline) throw e;
        }
        if (last) return last;
        if (Date.now() >= deadline) {
            const what = typeof describe === "function" ? describe() : describe;
            const diag = device ? ` [${device.label}: ${device.diagnostics()}]` : "";
            throw new Error(`timed out after ${timeout} ms waiting for: ${what}${diag}`);
        }
        await sleep(50);
    }
}

export function sleep(ms) {
    return new Promise((r) => setTimeout(r, ms));
}

/** Creates a room as owner, invites each other device's user and joins it. */
export async function sharedRoom(owner, others, createOpts = {}) {
    const { room_id: roomId } = await owner.client.createRoom({
        preset: "private_chat",
        visibility: "private",
        name: uniqueName("room"),
        ...createOpts,
    });
    assert.match(roomId, /^!/, "createRoom returned a room ID");
    for (const d of others) {
        await owner.client.invite(roomId, d.userId);
        await waitUntil(() => d.room(roomId)?.getMyMembership() === "invite", `${d.label} sees the invite to ${roomId}`, {
            device: d,
        });
        await d.client.joinRoom(roomId);
        await waitUntil(() => d.room(roomId)?.getMyMembership() === "join", `${d.label} joined ${roomId}`, {
            device: d,
        });
    }
    for (const d of others) {
        await waitUntil(
            () => owner.room(roomId)?.getMember(d.userId)?.membership === "join",
            `${owner.label} sees ${d.userId} joined`,
            { device: owner },
        );
    }
    return roomId;
}

/** The live timeline's events of a type (m.room.message by default). */
export function liveEvents(room, type = "m.room.message") {
    return room
        .getLiveTimeline()
        .getEvents()
        .filter((e) => e.getType() === type);
}

/** Finds an event in the room's live timeline that came back from the server. */
export function findRemoteEvent(room, eventId) {
    return room?.getLiveTimeline().getEvents().find((e) => e.getId() === eventId && !e.status);
}

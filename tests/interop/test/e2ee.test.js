// End-to-end encryption with the Rust crypto stack Element Web uses
// (@matrix-org/matrix-sdk-crypto-wasm through matrix-js-sdk): encrypted
// messages both ways, cross-signing bootstrap seen by another user, key
// backup restored on a fresh device to decrypt old history, SAS verification
// between two devices over to-device messages, Element's secret-storage
// recovery flow, and a mixed room where a mautrix-go (pure-Go Olm) client and
// a Rust crypto client decrypt each other's messages.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { BASE_URL, User, WAIT_MS, waitUntil, withTimeout, rawApi, verifyBySas, cryptoDevice } from "../lib/harness.js";
import { CryptoEvent, VerificationPhase } from "matrix-js-sdk/lib/crypto-api/index.js";

const T = { timeout: 90000 };


/** A raw API call as one of our devices. */
const api = (device, method, path, body) => rawApi(device.accessToken, method, path, body);

/** Creates an encrypted room of owner's with the other devices' users joined. */
async function encryptedRoom(owner, others) {
    const { room_id: roomId } = await owner.client.createRoom({
        preset: "private_chat",
        invite: others.map((d) => d.userId),
        initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
    });
    for (const d of others) {
        await waitUntil(() => d.room(roomId)?.getMyMembership() === "invite", `${d.label} sees the invite`, { device: d });
        await d.client.joinRoom(roomId);
    }
    for (const d of [owner, ...others]) {
        for (const other of others) {
            await waitUntil(
                () => d.room(roomId)?.getMember(other.userId)?.membership === "join",
                `${d.label} sees ${other.userId} joined`,
                { device: d },
            );
        }
        await waitUntil(() => d.room(roomId)?.hasEncryptionStateEvent(), `${d.label} knows the room is encrypted`, { device: d });
    }
    return roomId;
}

/** Waits until the device shows a decrypted message with the body. */
async function decrypted(device, roomId, body) {
    return waitUntil(
        async () => {
            const room = device.room(roomId);
            if (!room) return null;
            for (const ev of room.getLiveTimeline().getEvents()) {
                if (!ev.isEncrypted()) continue;
                await device.client.decryptEventIfNeeded(ev);
                if (ev.getType() === "m.room.message" && ev.getContent().body === body) return ev;
            }
            return null;
        },
        () => {
            const room = device.room(roomId);
            const seen = room
                ?.getLiveTimeline()
                .getEvents()
                .filter((e) => e.isEncrypted())
                .map((e) => (e.isDecryptionFailure() ? `UTD(${e.decryptionFailureReason})` : e.getContent().body));
            return `${device.label} decrypts "${body}" (encrypted events seen: ${JSON.stringify(seen)})`;
        },
        { device },
    );
}

/** Answers the cross-signing upload's user-interactive auth with the password. */
function passwordAuth(user) {
    return async (makeRequest) => {
        try {
            await makeRequest(null); // first upload: no auth needed (MSC3967)
        } catch (e) {
            if (e.httpStatus !== 401 || !e.data?.session) throw e;
            await makeRequest({
                type: "m.login.password",
                identifier: { type: "m.id.user", user: user.localpart },
                password: user.password,
                session: e.data.session,
            });
        }
    };
}

describe("end-to-end encryption (Rust crypto)", () => {
    let alice, bob, a1, b1, roomId;
    before(async () => {
        alice = await User.register("alice");
        bob = await User.register("bob");
        a1 = await cryptoDevice(alice, "alice#1");
        b1 = await cryptoDevice(bob, "bob#1");
        roomId = await encryptedRoom(a1, [b1]);
    });
    after(() => {
        alice?.stopAll();
        bob?.stopAll();
    });

    it("encrypted room: messages decrypt in both directions", T, async () => {
        await a1.client.sendTextMessage(roomId, "hello bob, secretly");
        const ev = await decrypted(b1, roomId, "hello bob, secretly");
        assert.equal(ev.getSender(), alice.userId);
        assert.equal(ev.getWireType(), "m.room.encrypted", "the server saw only ciphertext");
        await b1.client.sendTextMessage(roomId, "hello alice, secretly");
        await decrypted(a1, roomId, "hello alice, secretly");
        await a1.client.sendTextMessage(roomId, "one more for bob");
        await decrypted(b1, roomId, "one more for bob");
    });

    it("cross-signing: bootstrap succeeds and bob sees alice's device signed by her", T, async () => {
        const crypto = a1.client.getCrypto();
        await crypto.bootstrapCrossSigning({ authUploadDeviceSigningKeys: passwordAuth(alice) });
        await waitUntil(() => crypto.isCrossSigningReady(), "alice's cross-signing is ready", { device: a1 });
        const status = await crypto.getCrossSigningStatus();
        assert.equal(status.publicKeysOnDevice, true, `cross-signing status ${JSON.stringify(status)}`);

        const q = await api(b1, "POST", "/_matrix/client/v3/keys/query", { device_keys: { [alice.userId]: [] } });
        assert.ok(q.json.master_keys?.[alice.userId], `master key visible to bob: ${q.text}`);
        assert.ok(q.json.self_signing_keys?.[alice.userId], "self-signing key visible to bob");
        assert.equal(q.json.user_signing_keys?.[alice.userId], undefined, "alice's user-signing key is hers only");

        await waitUntil(
            async () => {
                await b1.client.getCrypto().getUserDeviceInfo([alice.userId], true);
                const v = await b1.client.getCrypto().getDeviceVerificationStatus(alice.userId, a1.deviceId);
                return v?.signedByOwner;
            },
            "bob's crypto sees alice's device signed by her self-signing key",
            { device: b1 },
        );
        // Resetting the keys needs the password (user-interactive auth).
        let asked = false;
        await crypto.bootstrapCrossSigning({
            setupNewCrossSigning: true,
            authUploadDeviceSigningKeys: async (makeRequest) => {
                try {
                    await makeRequest(null);
                } catch (e) {
                    asked = e.httpStatus === 401;
                    await passwordAuth(alice)(makeRequest);
                }
            },
        });
        assert.equal(asked, true, "replacing cross-signing keys asked for the password");
    });

    it("key backup: created, filled, and restored on a fresh device that then decrypts old history", T, async () => {
        const crypto = a1.client.getCrypto();
        await crypto.resetKeyBackup();
        const version = await waitUntil(() => crypto.getActiveSessionBackupVersion(), "alice's backup is active", { device: a1 });
        await a1.client.sendTextMessage(roomId, "history for the backup");
        await decrypted(b1, roomId, "history for the backup");
        // The Rust backup loop waits a random 0-10 s before uploading.
        const info = await waitUntil(
            async () => {
                const res = await api(a1, "GET", `/_matrix/client/v3/room_keys/version/${version}`);
                return res.json?.count >= 2 && res.json;
            },
            "the room keys reach the server backup",
            { device: a1, timeout: 30000 },
        );
        assert.equal(info.version, version);
        assert.ok(info.etag, "backup version has an etag");

        const backupKey = await crypto.getSessionBackupPrivateKey();
        assert.ok(backupKey, "alice's device holds the backup decryption key");

        const a2 = await cryptoDevice(alice, "alice#2");
        const crypto2 = a2.client.getCrypto();
        await crypto2.storeSessionBackupPrivateKey(backupKey, version);
        const result = await crypto2.restoreKeyBackup();
        assert.ok(result.imported >= 2, `restored ${JSON.stringify(result)}`);
        await decrypted(a2, roomId, "history for the backup");
        await decrypted(a2, roomId, "hello bob, secretly");
        await decrypted(a2, roomId, "hello alice, secretly");
    });
});

describe("device verification over to-device messages (SAS)", () => {
    let erin, e1, e2;
    before(async () => {
        erin = await User.register("erin");
        e1 = await cryptoDevice(erin, "erin#1");
        e2 = await cryptoDevice(erin, "erin#2");
    });
    after(() => erin?.stopAll());

    it("two devices of one user verify each other with emoji", T, async () => {
        const incoming = new Promise((resolve) => e2.client.on(CryptoEvent.VerificationRequestReceived, resolve));
        // e1 must know e2's keys before it can address it.
        await waitUntil(
            async () => (await e1.client.getCrypto().getUserDeviceInfo([erin.userId], true)).get(erin.userId)?.has(e2.deviceId),
            "erin#1 knows erin#2",
            { device: e1 },
        );
        const req1 = await e1.client.getCrypto().requestDeviceVerification(erin.userId, e2.deviceId);
        const req2 = await withTimeout(incoming, WAIT_MS, "erin#2 receives the verification request");
        await req2.accept();
        await waitUntil(() => req1.phase === VerificationPhase.Ready, "the request is ready on erin#1", { device: e1 });
        const v1 = await req1.startVerification("m.sas.v1");
        const v2 = await waitUntil(() => req2.verifier, "erin#2 sees the SAS start", { device: e2 });
        const emoji = await verifyBySas(v1, v2);
        assert.equal(emoji.length, 2);
        assert.equal(emoji[0], emoji[1], "both devices showed the same emoji");
        const status = await e1.client.getCrypto().getDeviceVerificationStatus(erin.userId, e2.deviceId);
        assert.equal(status?.localVerified, true, "erin#1 trusts erin#2 after SAS");
    });
});

/** Secret storage callbacks that remember the keys they are given. */
function secretStorageCallbacks(known = {}) {
    return {
        getSecretStorageKey: async ({ keys }) => {
            const id = Object.keys(keys).find((k) => known[k]);
            return id ? [id, known[id]] : null;
        },
        cacheSecretStorageKey: (keyId, _info, key) => {
            known[keyId] = key;
        },
    };
}

describe("secret storage and recovery (Element's set-up flow)", () => {
    let carol, dave, c1, d1, roomId;
    const known = {};
    before(async () => {
        carol = await User.register("carol");
        dave = await User.register("dave");
        c1 = await cryptoDevice(carol, "carol#1", { cryptoCallbacks: secretStorageCallbacks(known) });
        d1 = await cryptoDevice(dave, "dave#1");
        roomId = await encryptedRoom(c1, [d1]);
    });
    after(() => {
        carol?.stopAll();
        dave?.stopAll();
    });

    it("a fresh device recovers cross-signing and the key backup with the recovery key", T, async () => {
        const crypto = c1.client.getCrypto();
        await crypto.bootstrapCrossSigning({ authUploadDeviceSigningKeys: passwordAuth(carol) });
        const recovery = await crypto.createRecoveryKeyFromPassphrase();
        await crypto.bootstrapSecretStorage({
            createSecretStorageKey: async () => recovery,
            setupNewSecretStorage: true,
            setupNewKeyBackup: true,
        });
        assert.equal(await crypto.isSecretStorageReady(), true, "secret storage is ready");
        // Secret storage is account data the server keeps untouched.
        for (const type of ["m.secret_storage.default_key", "m.cross_signing.master", "m.megolm_backup.v1"]) {
            const res = await api(c1, "GET", `/_matrix/client/v3/user/${encodeURIComponent(carol.userId)}/account_data/${type}`);
            assert.equal(res.status, 200, `account data ${type}: ${res.text}`);
        }
        const version = await waitUntil(() => crypto.getActiveSessionBackupVersion(), "carol's backup is active", { device: c1 });
        await c1.client.sendTextMessage(roomId, "before the new device");
        await decrypted(d1, roomId, "before the new device");
        await waitUntil(
            async () => (await api(c1, "GET", `/_matrix/client/v3/room_keys/version/${version}`)).json?.count >= 1,
            "the room key reaches the backup",
            { device: c1, timeout: 30000 },
        );

        // A new login, given only the recovery key.
        const c2 = await cryptoDevice(carol, "carol#2", {
            cryptoCallbacks: secretStorageCallbacks(new Proxy({}, { get: () => recovery.privateKey })),
        });
        const crypto2 = c2.client.getCrypto();
        await crypto2.bootstrapCrossSigning({}); // imports the private keys from secret storage and signs this device
        await waitUntil(() => crypto2.isCrossSigningReady(), "carol#2 has cross-signing", { device: c2 });
        await crypto2.loadSessionBackupPrivateKeyFromSecretStorage();
        await crypto2.checkKeyBackupAndEnable();
        const result = await crypto2.restoreKeyBackup();
        assert.ok(result.imported >= 1, `restored ${JSON.stringify(result)}`);
        await decrypted(c2, roomId, "before the new device");

        // Dave sees the new device signed by carol (signature upload + device list change).
        await waitUntil(
            async () => {
                await d1.client.getCrypto().getUserDeviceInfo([carol.userId], true);
                return (await d1.client.getCrypto().getDeviceVerificationStatus(carol.userId, c2.deviceId))?.signedByOwner;
            },
            "dave sees carol#2 cross-signed",
            { device: d1 },
        );
    });
});

/**
 * Builds and starts the mautrix-go peer (tests/interop/gopeer, -tags goolm)
 * logged in as user. The peer exits when its stdin closes, so it cannot
 * outlive this process.
 */
function startGoPeer(user) {
    const root = fileURLToPath(new URL("../../..", import.meta.url));
    const dir = mkdtempSync(join(tmpdir(), "axon-gopeer-"));
    // run.sh builds the peer once for every test that starts one.
    let bin = process.env.AXON_INTEROP_GOPEER_BINARY;
    if (!bin) {
        bin = join(dir, "gopeer");
        const env = { ...process.env, GOTOOLCHAIN: process.env.GOTOOLCHAIN ?? "go1.27.3" };
        const build = spawnSync("go", ["build", "-tags", "goolm", "-o", bin, "./tests/interop/gopeer"], { cwd: root, env, encoding: "utf8" });
        assert.equal(build.status, 0, `go build gopeer: ${build.stderr}`);
    }
    const proc = spawn(bin, [BASE_URL, user.localpart, user.password], { stdio: ["pipe", "pipe", "pipe"] });
    const peer = { proc, dir, lines: [], stderr: "" };
    let buf = "";
    proc.stdout.on("data", (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
            peer.lines.push(buf.slice(0, i));
            buf = buf.slice(i + 1);
        }
    });
    proc.stderr.on("data", (chunk) => {
        peer.stderr += chunk;
    });
    return peer;
}

describe("mixed crypto stacks: mautrix-go (goolm) and Rust crypto", () => {
    let alice, gopher, a1, peer;
    before(async () => {
        alice = await User.register("alice");
        gopher = await User.register("gopher");
        peer = startGoPeer(gopher);
        a1 = await cryptoDevice(alice, "alice#1");
    });
    after(() => {
        alice?.stopAll();
        peer?.proc.stdin.end();
        peer?.proc.kill("SIGINT");
        if (peer) rmSync(peer.dir, { recursive: true, force: true });
    });

    it("both decrypt each other's messages in one encrypted room", { timeout: 180000 }, async () => {
        await waitUntil(() => peer.lines.some((l) => l.startsWith("READY ")), () => `the Go peer is ready (stderr: ${peer.stderr})`, {
            timeout: 60000,
        });
        const { room_id: roomId } = await a1.client.createRoom({
            preset: "private_chat",
            invite: [gopher.userId],
            initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
        });
        await waitUntil(() => a1.room(roomId)?.getMember(gopher.userId)?.membership === "join", "the Go peer joins", { device: a1 });
        await a1.client.sendTextMessage(roomId, "hello from rust crypto");
        await waitUntil(
            () => peer.lines.includes("GOT hello from rust crypto"),
            () => `the Go peer decrypts alice's message (peer said: ${JSON.stringify(peer.lines)})`,
        );
        await decrypted(a1, roomId, "echo: hello from rust crypto");
        await a1.client.sendTextMessage(roomId, "second round");
        await waitUntil(() => peer.lines.includes("GOT second round"), () => `peer: ${JSON.stringify(peer.lines)}`);
        await decrypted(a1, roomId, "echo: second round");
        assert.deepEqual(peer.lines.filter((l) => l.startsWith("UTD") || l.startsWith("ERROR")), [], "no undecryptable messages on the Go side");
    });
});

// Cross-signing set up and a new login verified, the way Element Web does it
// with the Rust crypto stack. Element first asks /versions whether the server
// supports cross-signing. A first login bootstraps cross-signing (no password
// needed) and is lost; the next login cannot confirm its identity and resets
// it, answering the upload's user-interactive auth with the account password,
// then sets up recovery (secret storage with a new key backup). A third login
// is verified from it ("Verify with another device": SAS over to-device
// messages): the verified device signs the new one, which then trusts itself
// and its user's identity and receives the secrets (cross-signing keys and
// the backup key) by to-device secret sharing.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { BASE_URL, User, WAIT_MS, waitUntil, withTimeout, rawApi, verifyBySas, cryptoDevice } from "../lib/harness.js";
import { CryptoEvent, VerificationPhase } from "matrix-js-sdk/lib/crypto-api/index.js";

const T = { timeout: 90000 };

/** A raw API call as one of our devices. */
const api = (device, method, path, body) => rawApi(device.accessToken, method, path, body);


/**
 * Waits until the device has fetched its own user's keys after the last
 * /sync that said they changed, and has no key query in flight. Rust crypto
 * drops its private cross-signing keys when a key query answers with other
 * public keys, so replacing the keys while the previous ones are still being
 * fetched would lose the new private keys on the device (a client-side race:
 * a person clicking through Element's dialogs does not hit it).
 */
async function keysSettled(d) {
    await waitUntil(
        () => {
            const changed = d.rec.syncs
                .filter((s) => s.body.device_lists?.changed?.includes(d.userId))
                .reduce((t, s) => Math.max(t, s.at), 0);
            const q = d.rec.keyQueries;
            return q.length > 0 && q.every((x) => x.end) && q.some((x) => x.start >= changed);
        },
        `${d.label} fetched its own keys after their last change`,
        { device: d },
    );
}

/** Secret storage callbacks that remember the keys they are given (Element keeps them for the session). */
function secretStorageCallbacks(known) {
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

/**
 * Element's answer to the cross-signing upload's user-interactive auth: try
 * with an empty auth dict (the first upload needs none, MSC3967); when the
 * server answers 401 with flows, complete m.login.password in the session it
 * gave (Element asks the user for the password here). uia records what the
 * server asked for.
 */
function elementUploadAuth(user, uia) {
    return async (makeRequest) => {
        try {
            await makeRequest({});
            uia.push("none");
        } catch (e) {
            if (e.httpStatus !== 401 || !e.data?.flows) throw e;
            const passwordOnly = e.data.flows.some((f) => f.stages?.length === 1 && f.stages[0] === "m.login.password");
            assert.ok(passwordOnly, `flows offer m.login.password alone: ${JSON.stringify(e.data)}`);
            await makeRequest({
                type: "m.login.password",
                identifier: { type: "m.id.user", user: user.localpart },
                password: user.password,
                session: e.data.session,
            });
            uia.push("password");
        }
    };
}

describe("cross-signing set-up and verifying a new login (Element's flows)", () => {
    let frank, f0, f1;
    const known = {};
    before(async () => {
        frank = await User.register("frank");
        f0 = await cryptoDevice(frank, "frank#0");
    });
    after(() => frank?.stopAll());

    it("the server says it supports cross-signing, as Element checks it", async () => {
        // Element Web (2025 on): spec v1.1 or the unstable flag; before that, the flag alone.
        assert.equal(await f0.client.isVersionSupported("v1.1"), true);
        assert.equal(
            await f0.client.doesServerSupportUnstableFeature("org.matrix.e2e_cross_signing"),
            true,
            "org.matrix.e2e_cross_signing in /versions' unstable_features",
        );
    });

    it("set up, reset on a new login with the password, recovery, and a second login verified from the first", T, async () => {
        // The first login sets up cross-signing: no password needed (MSC3967).
        const uia = [];
        await f0.client.getCrypto().bootstrapCrossSigning({ authUploadDeviceSigningKeys: elementUploadAuth(frank, uia) });
        assert.deepEqual(uia, ["none"], "the first upload needs no user-interactive auth");
        const oldMaster = await f0.client.getCrypto().getCrossSigningKeyId();
        assert.ok(oldMaster, "frank#0 has a master key");
        f0.stop(); // that device is lost

        // A new login cannot confirm its identity and resets it, which replaces the keys:
        // the server asks for the password.
        f1 = await cryptoDevice(frank, "frank#1", { cryptoCallbacks: secretStorageCallbacks(known) });
        const crypto1 = f1.client.getCrypto();
        await keysSettled(f1);
        assert.equal(await crypto1.isCrossSigningReady(), false, "frank#1 cannot use the old identity");
        await crypto1.bootstrapCrossSigning({ setupNewCrossSigning: true, authUploadDeviceSigningKeys: elementUploadAuth(frank, uia) });
        assert.deepEqual(uia, ["none", "password"], "replacing the keys asked for the password");
        // Secret storage with a new key backup (Element's "Set up recovery").
        const recovery = await crypto1.createRecoveryKeyFromPassphrase();
        await crypto1.bootstrapSecretStorage({
            createSecretStorageKey: async () => recovery,
            setupNewSecretStorage: true,
            setupNewKeyBackup: true,
        });
        assert.equal(await crypto1.isSecretStorageReady(), true, "secret storage is ready");
        await waitUntil(() => crypto1.isCrossSigningReady(), "frank#1 has cross-signing", { device: f1 });
        const backupVersion = await waitUntil(() => crypto1.getActiveSessionBackupVersion(), "frank#1's backup is active", { device: f1 });
        const q1 = await api(f1, "POST", "/_matrix/client/v3/keys/query", { device_keys: { [frank.userId]: [] } });
        const masterKey = Object.values(q1.json.master_keys?.[frank.userId]?.keys ?? {})[0];
        const selfSigningKey = Object.values(q1.json.self_signing_keys?.[frank.userId]?.keys ?? {})[0];
        assert.ok(masterKey && selfSigningKey, `frank's cross-signing keys on the server: ${q1.text}`);
        assert.notEqual(masterKey, oldMaster, "the reset replaced the master key");
        assert.equal(await crypto1.getCrossSigningKeyId(), masterKey);
        assert.ok(q1.json.user_signing_keys?.[frank.userId], "frank sees his own user-signing key");

        // A second login: not trusted yet, by itself or by the first device.
        const f2 = await cryptoDevice(frank, "frank#2");
        const crypto2 = f2.client.getCrypto();
        await crypto2.getUserDeviceInfo([frank.userId], true);
        const before2 = await crypto2.getDeviceVerificationStatus(frank.userId, f2.deviceId);
        assert.equal(before2?.crossSigningVerified, false, "frank#2 is not cross-signed before verification");
        assert.equal(await crypto2.isCrossSigningReady(), false, "frank#2 holds no cross-signing secrets yet");

        // "Verify with another device": frank#2 asks, frank#1 accepts, both compare emoji.
        const incoming = new Promise((resolve) => f1.client.on(CryptoEvent.VerificationRequestReceived, resolve));
        await waitUntil(
            async () => (await crypto1.getUserDeviceInfo([frank.userId], true)).get(frank.userId)?.has(f2.deviceId),
            "frank#1 knows frank#2",
            { device: f1 },
        );
        const req2 = await crypto2.requestOwnUserVerification();
        const req1 = await withTimeout(incoming, WAIT_MS, "frank#1 receives frank#2's verification request");
        assert.equal(req1.isSelfVerification, true, "a self-verification request");
        await req1.accept();
        await waitUntil(() => req2.phase === VerificationPhase.Ready, "the request is ready on frank#2", { device: f2 });
        const v2 = await req2.startVerification("m.sas.v1");
        const v1 = await waitUntil(() => req1.verifier, "frank#1 sees the SAS start", { device: f1 });
        const emoji = await verifyBySas(v1, v2);
        assert.equal(emoji.length, 2);
        assert.equal(emoji[0], emoji[1], "both devices showed the same emoji");

        // frank#1 signed frank#2 with the self-signing key (POST /keys/signatures/upload).
        const signed = await waitUntil(
            async () => {
                const q = await api(f2, "POST", "/_matrix/client/v3/keys/query", { device_keys: { [frank.userId]: [f2.deviceId] } });
                const sigs = q.json?.device_keys?.[frank.userId]?.[f2.deviceId]?.signatures?.[frank.userId] ?? {};
                return sigs[`ed25519:${selfSigningKey}`] && sigs;
            },
            "frank#2's device keys carry the self-signing key's signature",
            { device: f2 },
        );
        assert.ok(signed[`ed25519:${f2.deviceId}`], "and still its own");

        // frank#2 now trusts itself and frank#1 through cross-signing, and frank's identity;
        // not the lost device, signed by the keys the reset replaced.
        await waitUntil(
            async () => (await crypto2.getDeviceVerificationStatus(frank.userId, f2.deviceId))?.crossSigningVerified,
            "frank#2 sees itself cross-signing verified",
            { device: f2 },
        );
        const identity = await crypto2.getUserVerificationStatus(frank.userId);
        assert.equal(identity.isCrossSigningVerified(), true, "frank#2 trusts frank's cross-signing identity");
        assert.equal((await crypto2.getDeviceVerificationStatus(frank.userId, f1.deviceId))?.crossSigningVerified, true, "frank#1 trusted");
        assert.equal((await crypto2.getDeviceVerificationStatus(frank.userId, f0.deviceId))?.crossSigningVerified, false, "frank#0 not trusted");

        // The secrets reach frank#2 (m.secret.request / m.secret.send to-device):
        // it can sign further logins itself and read the key backup.
        // (isCrossSigningReady is true as soon as the identity is trusted, since the keys
        // are in secret storage; the secrets arrive one message each.)
        let cached;
        await waitUntil(
            async () => {
                cached = (await crypto2.getCrossSigningStatus()).privateKeysCachedLocally;
                return cached.masterKey && cached.selfSigningKey && cached.userSigningKey;
            },
            () => `frank#2 received the three cross-signing keys (has ${JSON.stringify(cached)})`,
            { device: f2 },
        );
        assert.equal(await crypto2.isCrossSigningReady(), true);
        await waitUntil(() => crypto2.getSessionBackupPrivateKey(), "frank#2 received the backup key", { device: f2 });
        await crypto2.checkKeyBackupAndEnable();
        assert.equal(await crypto2.getActiveSessionBackupVersion(), backupVersion, "frank#2 uses the same backup");
    });
});

// Refresh tokens (spec 1.3) through matrix-js-sdk. run.sh gives opted-in
// clients 4 s access tokens (AXON_REFRESH_TOKENS_ACCESS_TOKEN_LIFETIME).
// matrix-js-sdk 43 refreshes by itself only for OAuth 2.0 sessions, so the
// test does what an app using the legacy API does: client.refreshToken()
// before the access token expires, or after an M_UNKNOWN_TOKEN soft logout.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { createClient, HttpApiEvent } from "matrix-js-sdk";

import { BASE_URL, Device, sharedRoom, sleep, User, waitUntil } from "../lib/harness.js";

const T = { timeout: 60000 };
const LIFETIME_MS = 4000;

async function refreshLogin(user, label) {
    const bare = createClient({ baseUrl: BASE_URL });
    return bare.loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: user.localpart },
        password: user.password,
        initial_device_display_name: label,
        refresh_token: true,
    });
}

async function whoamiStatus(token) {
    const res = await fetch(new URL("/_matrix/client/v3/account/whoami", BASE_URL), {
        headers: { Authorization: `Bearer ${token}` },
    });
    return { status: res.status, body: await res.json() };
}

describe("refresh tokens", () => {
    let alice, bob, a, roomId;
    const devices = [];
    before(async () => {
        alice = await User.register("rt-alice");
        bob = await User.register("rt-bob");
        a = await alice.startDevice();
    });
    after(() => {
        alice?.stopAll();
        devices.forEach((d) => d.stop());
    });

    it("a client that refreshes keeps syncing across its first token's expiry", T, async () => {
        const login = await refreshLogin(bob, "refreshing");
        assert.equal(login.expires_in_ms, LIFETIME_MS, `expires_in_ms in ${JSON.stringify(login)}`);
        assert.match(login.refresh_token ?? "", /^axr_/, "a refresh token in the login response");
        const b = new Device(login, "rt-bob");
        devices.push(b);
        await b.start();
        roomId = await sharedRoom(a, [b]);

        // Refresh at half the lifetime, as an app would, until stopped.
        let refreshToken = login.refresh_token;
        let refreshes = 0;
        let stopped = false;
        const loop = (async () => {
            let wait = login.expires_in_ms / 2;
            while (!stopped) {
                await sleep(wait);
                if (stopped) break;
                const r = await b.client.refreshToken(refreshToken);
                assert.ok(r.access_token && r.refresh_token, `refresh answer ${JSON.stringify(r)}`);
                b.client.setAccessToken(r.access_token);
                refreshToken = r.refresh_token;
                refreshes++;
                wait = r.expires_in_ms / 2;
            }
        })();
        try {
            await sleep(LIFETIME_MS + 1500);
            const first = await whoamiStatus(login.access_token);
            assert.equal(first.status, 401, "the first access token no longer works");
            assert.equal(first.body.errcode, "M_UNKNOWN_TOKEN");

            const { event_id: eventId } = await a.client.sendTextMessage(roomId, "after the first token expired");
            await waitUntil(
                () => b.room(roomId)?.findEventById(eventId),
                "bob's client receives a message sent after its first token expired",
                { device: b },
            );
            assert.ok(refreshes >= 2, `the client refreshed (${refreshes} times)`);
            const unauthorised = b.rec.errors.filter((e) => e.status === 401);
            assert.deepEqual(unauthorised, [], "no request of the refreshing client was refused");
        } finally {
            stopped = true;
            await loop;
        }
    });

    it("a client whose token expired is soft logged out, refreshes and syncs again", T, async () => {
        const login = await refreshLogin(bob, "lapsed");
        const c = new Device(login, "rt-bob-lapsed");
        devices.push(c);
        let loggedOut = null;
        c.client.on(HttpApiEvent.SessionLoggedOut, (err) => {
            loggedOut = err;
        });
        await c.start();
        await sleep(LIFETIME_MS + 500);
        // The next request after the expiry is refused as a soft logout.
        await assert.rejects(c.client.whoami(), (e) => {
            assert.equal(e.httpStatus, 401);
            assert.equal(e.errcode, "M_UNKNOWN_TOKEN");
            assert.equal(e.data?.soft_logout, true, `soft_logout in ${JSON.stringify(e.data)}`);
            return true;
        });
        await waitUntil(() => loggedOut, "the SDK reports the soft logout", { device: c });
        c.stop();

        // The app refreshes and resumes the same device: no new login.
        const r = await c.client.refreshToken(login.refresh_token);
        c.client.setAccessToken(r.access_token);
        const who = await c.client.whoami();
        assert.equal(who.device_id, login.device_id, "the refreshed token belongs to the same device");
        await c.start();
        const { event_id: eventId } = await a.client.sendTextMessage(roomId, "after the refresh");
        await waitUntil(() => c.room(roomId)?.findEventById(eventId), "the resumed client receives new messages", {
            device: c,
        });
        // The refresh token used is spent once the new access token was used.
        await assert.rejects(c.client.refreshToken(login.refresh_token), (e) => {
            assert.equal(e.httpStatus, 401);
            assert.equal(e.errcode, "M_UNKNOWN_TOKEN");
            return true;
        });
    });
});

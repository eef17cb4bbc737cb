// Login and first sync, as Element does on start-up.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";

import { Device, passwordLogin, SERVER_NAME, User, waitUntil } from "../lib/harness.js";

const T = { timeout: 60000 };

describe("login and sync", () => {
    let user;
    const devices = [];
    after(() => devices.forEach((d) => d.stop()));

    it("password login with an m.id.user identifier returns a new device", T, async () => {
        user = await User.register("login");
        const res = await passwordLogin(user.localpart, user.password, "interop login");
        assert.equal(res.user_id, `@${user.localpart}:${SERVER_NAME}`);
        assert.ok(res.access_token, "access_token in login response");
        assert.ok(res.device_id, "device_id in login response");

        const again = await passwordLogin(user.localpart, user.password, "interop login 2");
        assert.notEqual(again.device_id, res.device_id, "a second login creates a second device");
        assert.notEqual(again.access_token, res.access_token, "a second login gets its own token");
    });

    it("a wrong password is refused with M_FORBIDDEN", T, async () => {
        await assert.rejects(passwordLogin(user.localpart, "not-the-password", "x"), (e) => {
            assert.equal(e.httpStatus, 403, `status of a bad login: ${e.httpStatus} ${e.message}`);
            assert.equal(e.errcode, "M_FORBIDDEN");
            return true;
        });
    });

    it("a fresh client with the login's credentials reaches PREPARED, then keeps syncing", T, async () => {
        const res = await passwordLogin(user.localpart, user.password, "interop sync");
        const d = new Device(res, "login-sync");
        devices.push(d);

        const whoami = await d.client.whoami();
        assert.equal(whoami.user_id, user.userId, "whoami user_id");
        assert.equal(whoami.device_id, res.device_id, "whoami device_id");

        await d.start();
        assert.equal(d.client.isInitialSyncComplete(), true);
        const first = d.rec.syncs[0]?.body;
        assert.ok(first, "the SDK received a /sync response");
        assert.equal(typeof first.next_batch, "string", "/sync next_batch is a string");
        assert.ok(first.next_batch.length > 0, "/sync next_batch is not empty");

        // The SDK then long-polls with since=next_batch (timeout 30 s). A new room must
        // wake that long-poll at once, not when it times out.
        await d.longPolling();
        const t0 = Date.now();
        const { room_id: roomId } = await d.client.createRoom({ preset: "private_chat", name: "wake up" });
        await waitUntil(() => d.room(roomId), "the new room arrives through the incremental sync", { device: d });
        const answer = d.rec.syncs.find((s) => s.query.includes("since=") && s.body.rooms?.join?.[roomId]);
        assert.ok(answer, "an incremental /sync (with since=) carried the new room under rooms.join");
        assert.ok(answer.at - t0 < 5000, `the long-poll woke within 5 s (took ${answer.at - t0} ms)`);
        const since = new URLSearchParams(answer.query).get("since");
        assert.ok(
            d.rec.syncs.some((s) => s.body.next_batch === since),
            "the SDK's since token is a next_batch the server handed out",
        );
    });
});

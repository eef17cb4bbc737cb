// Typing notifications, as Element sends them while the user types.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { sharedRoom, User, waitUntil } from "../lib/harness.js";
import { RoomMemberEvent } from "matrix-js-sdk";

const T = { timeout: 60000 };

describe("typing notifications", () => {
    let alice, bob, a, b, roomId;
    before(async () => {
        alice = await User.register("ty-alice");
        bob = await User.register("ty-bob");
        a = await alice.startDevice();
        b = await bob.startDevice();
        roomId = await sharedRoom(a, [b]);
    });
    after(() => {
        alice?.stopAll();
        bob?.stopAll();
    });

    const typingOf = (d, userId) => d.room(roomId)?.getMember(userId)?.typing;
    const rawTyping = (d) =>
        d.rec.syncs
            .flatMap((s) => s.body.rooms?.join?.[roomId]?.ephemeral?.events ?? [])
            .filter((e) => e.type === "m.typing");

    it("bob starts typing: alice sees it", T, async () => {
        const emitted = [];
        a.client.on(RoomMemberEvent.Typing, (_ev, member) => {
            if (member.roomId === roomId && member.userId === bob.userId) emitted.push(member.typing);
        });
        await b.client.sendTyping(roomId, true, 30000);
        await waitUntil(() => typingOf(a, bob.userId) === true, "alice sees bob typing", { device: a });
        assert.ok(emitted.includes(true), "RoomMember.typing emitted on alice's client");
        const last = rawTyping(a).at(-1);
        assert.deepEqual(last?.content?.user_ids, [bob.userId], `m.typing user_ids: ${JSON.stringify(last)}`);
    });

    it("bob stops typing: alice sees it stop", T, async () => {
        await b.client.sendTyping(roomId, false, 0);
        await waitUntil(() => typingOf(a, bob.userId) === false, "alice sees bob stop typing", { device: a });
        const last = rawTyping(a).at(-1);
        assert.deepEqual(last?.content?.user_ids, [], `m.typing after stop: ${JSON.stringify(last)}`);
    });

    it("typing expires after its timeout without a stop", T, async () => {
        await b.client.sendTyping(roomId, true, 1500);
        await waitUntil(() => typingOf(a, bob.userId) === true, "alice sees bob typing again", { device: a });
        const started = Date.now();
        await waitUntil(() => typingOf(a, bob.userId) === false, "bob's typing times out for alice", {
            device: a,
            timeout: 15000,
        });
        assert.ok(Date.now() - started >= 500, "typing did not end before its timeout");
    });

    it("alice's own typing is reported to bob, not echoed as bob's", T, async () => {
        await a.client.sendTyping(roomId, true, 30000);
        await waitUntil(() => typingOf(b, alice.userId) === true, "bob sees alice typing", { device: b });
        assert.equal(typingOf(b, bob.userId), false, "bob is not marked typing");
        await a.client.sendTyping(roomId, false, 0);
        await waitUntil(() => typingOf(b, alice.userId) === false, "bob sees alice stop", { device: b });
    });
});

// Leaving a room: the room moves to rooms.leave and out of the joined list.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { sharedRoom, User, waitUntil } from "../lib/harness.js";

const T = { timeout: 60000 };

describe("leave", () => {
    let alice, bob, a, b, roomId;
    before(async () => {
        alice = await User.register("lv-alice");
        bob = await User.register("lv-bob");
        a = await alice.startDevice();
        b = await bob.startDevice();
        roomId = await sharedRoom(a, [b]);
    });
    after(() => {
        alice?.stopAll();
        bob?.stopAll();
    });

    it("bob leaves: his sync moves the room to leave, and alice sees him go", T, async () => {
        const t0 = Date.now();
        await b.client.leave(roomId);
        await waitUntil(
            () => b.room(roomId)?.getMyMembership() === "leave",
            () => `bob's membership is leave (is ${b.room(roomId)?.getMyMembership()})`,
            { device: b },
        );
        const raw = b.syncsSince(t0).filter((s) => s.body.rooms?.leave?.[roomId]);
        assert.ok(raw.length > 0, "the room appeared under rooms.leave in bob's incremental /sync");
        const leaveEv = (raw[0].body.rooms.leave[roomId].timeline?.events ?? []).find(
            (e) => e.type === "m.room.member" && e.state_key === bob.userId,
        );
        assert.equal(leaveEv?.content?.membership, "leave", "rooms.leave timeline holds bob's leave event");
        assert.ok(
            b.syncsSince(t0).every((s) => !s.body.rooms?.join?.[roomId] || s.at < raw[0].at),
            "the room is not under rooms.join once left",
        );

        await waitUntil(
            () => a.room(roomId)?.getMember(bob.userId)?.membership === "leave",
            "alice sees bob's membership become leave",
            { device: a },
        );
        assert.equal(a.room(roomId).getJoinedMemberCount(), 1, "alice is alone");
    });

    it("after leaving, the room is not in bob's joined rooms nor joined in a fresh sync", T, async () => {
        const { joined_rooms } = await b.client.getJoinedRooms();
        assert.ok(!joined_rooms.includes(roomId), `/joined_rooms still lists ${roomId}`);
        const fresh = await bob.startDevice({}, "lv-bob-fresh");
        assert.notEqual(fresh.room(roomId)?.getMyMembership(), "join", "a fresh initial sync does not show the room as joined");
        assert.equal(fresh.rec.syncs[0].body.rooms?.join?.[roomId], undefined, "not in rooms.join of the initial sync");
    });

    it("messages sent after bob left do not reach him", T, async () => {
        const t0 = Date.now();
        const { event_id } = await a.client.sendTextMessage(roomId, "bob is gone");
        // Alice's own sync delivers it; give bob's long-poll the same chance.
        await waitUntil(() => a.room(roomId).findEventById(event_id), "alice's echo", { device: a });
        // A later invite proves bob's sync moved past the message.
        const { room_id: later } = await a.client.createRoom({ preset: "private_chat", invite: [bob.userId] });
        await waitUntil(() => b.room(later)?.getMyMembership() === "invite", "bob gets a later invite (sync is live)", {
            device: b,
        });
        const leaked = b.syncsSince(t0).some((s) =>
            ["join", "leave"].some((k) => (s.body.rooms?.[k]?.[roomId]?.timeline?.events ?? []).some((e) => e.event_id === event_id)),
        );
        assert.equal(leaked, false, "bob's sync did not carry a message sent after he left");
    });
});

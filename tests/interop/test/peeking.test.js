// Room previews as matrix-js-sdk does them: getRoomSummary, then
// peekInRoom (GET /rooms/{roomId}/initialSync, then long-polls of
// GET /events?room_id=) on a world-readable room the user has not joined.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { liveEvents, sleep, uniqueName, User, waitUntil } from "../lib/harness.js";

const T = { timeout: 60000 };

describe("peeking: previews of world-readable rooms", () => {
    let alice, bob, a, b, roomId, name;
    const peekPolls = [];
    before(async () => {
        alice = await User.register("pk-alice");
        bob = await User.register("pk-bob");
        a = await alice.startDevice();
        // bob's client notes when its peek long-polls start.
        b = await bob.login("pk-bob#1", {
            fetchFn: (input, init) => {
                const url = new URL(String(input.url ?? input));
                if (url.pathname.endsWith("/events")) peekPolls.push({ at: Date.now(), query: url.search });
                return fetch(input, init);
            },
        });
        name = uniqueName("open house");
        ({ room_id: roomId } = await a.client.createRoom({
            preset: "public_chat",
            name,
            initial_state: [{ type: "m.room.history_visibility", state_key: "", content: { history_visibility: "world_readable" } }],
        }));
        await a.client.sendTextMessage(roomId, "before the peek");
    });
    after(() => {
        b?.client.stopPeeking();
        alice?.stopAll();
        bob?.stopAll();
    });

    it("summarises the room for a non-member", T, async () => {
        const summary = await b.client.getRoomSummary(roomId);
        assert.equal(summary.room_id, roomId);
        assert.equal(summary.name, name);
        assert.equal(summary.world_readable, true);
        assert.equal(summary.join_rule, "public");
        assert.equal(summary.num_joined_members, 1);
        assert.equal(summary.membership, "leave");
    });

    it("peeks: history first, then new messages as they are sent", T, async () => {
        const room = await b.client.peekInRoom(roomId);
        assert.equal(room.currentState.getStateEvents("m.room.name", "")?.getContent().name, name);
        assert.deepEqual(
            liveEvents(room).map((e) => e.getContent().body),
            ["before the peek"],
        );
        await waitUntil(() => peekPolls.length > 0, "bob long-polls /events");
        // The SDK's first poll has no from token: it streams from whenever
        // the server reads it, so give the request time to arrive.
        await sleep(300);
        await a.client.sendTextMessage(roomId, "while bob peeks");
        await waitUntil(
            () => liveEvents(room).some((e) => e.getContent().body === "while bob peeks"),
            "the new message reaches bob's peeked room",
        );
        assert.ok(peekPolls.every((p) => new URLSearchParams(p.query).get("room_id") === roomId), "every poll names the room");
    });
});

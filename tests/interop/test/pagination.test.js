// Back-pagination on a fresh client: what Element does when the user scrolls up.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { liveEvents, User, waitUntil } from "../lib/harness.js";

const T = { timeout: 120000 };
const N = 30;
const bodies = Array.from({ length: N }, (_, i) => `message ${String(i).padStart(2, "0")}`);

describe("pagination", () => {
    let alice, a, roomId;
    const sentIds = [];
    before(async () => {
        alice = await User.register("pager");
        a = await alice.startDevice();
        ({ room_id: roomId } = await a.client.createRoom({ preset: "private_chat", name: "Pagination" }));
        await waitUntil(() => a.room(roomId), "room in alice's sync", { device: a });
        for (const body of bodies) {
            const { event_id } = await a.client.sendTextMessage(roomId, body);
            sentIds.push(event_id);
        }
        await waitUntil(
            () => liveEvents(a.room(roomId)).filter((e) => !e.status).length >= N,
            "alice's own sync echoes all messages",
            { device: a },
        );
    });
    after(() => alice?.stopAll());

    it(`scrollback on a fresh client (initialSyncLimit 5) returns all ${N} messages in order`, T, async () => {
        const fresh = await alice.startDevice({ initialSyncLimit: 5 }, "pager-fresh");
        const room = await waitUntil(() => fresh.room(roomId), "room in the fresh client's initial sync", { device: fresh });
        const initial = liveEvents(room).map((e) => e.getContent().body);
        assert.ok(initial.length <= 5, `initial sync timeline honours limit 5, got ${initial.length} messages`);
        assert.equal(initial.at(-1), bodies.at(-1), "initial sync ends with the newest message");
        assert.ok(room.oldState.paginationToken, "initial sync gave a prev_batch to paginate from");

        for (let i = 0; i < 20 && room.oldState.paginationToken !== null; i++) {
            await fresh.client.scrollback(room, 10);
        }
        assert.equal(room.oldState.paginationToken, null, "scrollback reached the start of the room");
        const all = liveEvents(room);
        assert.deepEqual(
            all.map((e) => e.getContent().body),
            bodies,
            "messages after scrollback, oldest first",
        );
        assert.deepEqual(
            all.map((e) => e.getId()),
            sentIds,
            "event IDs after scrollback match the IDs returned by /send",
        );
        const first = room.getLiveTimeline().getEvents()[0];
        assert.equal(first.getType(), "m.room.create", "the timeline starts with m.room.create");
    });

    it("createMessagesRequest pages backwards from prev_batch and forwards again, without gaps or repeats", T, async () => {
        const fresh = await alice.startDevice({ initialSyncLimit: 5 }, "pager-raw");
        const initialSync = fresh.rec.syncs[0].body;
        const joined = initialSync.rooms?.join?.[roomId];
        assert.ok(joined, "room in rooms.join of the initial sync");
        const prevBatch = joined.timeline?.prev_batch;
        assert.equal(typeof prevBatch, "string", "timeline.prev_batch is a string");
        const inSync = (joined.timeline.events ?? []).filter((e) => e.type === "m.room.message").map((e) => e.content.body);

        // Backwards in pages of 7 until the server has nothing older.
        const back = [];
        let from = prevBatch;
        let oldestEnd = null; // the end token of the page holding the oldest events, if given
        for (let page = 0; page < 30; page++) {
            const res = await fresh.client.createMessagesRequest(roomId, from, 7, "b");
            assert.ok(Array.isArray(res.chunk), "chunk is an array");
            assert.equal(res.start, from, "start echoes the from token");
            assert.ok(res.chunk.length <= 7, `limit 7 honoured (got ${res.chunk.length})`);
            if (res.chunk.length === 0) break;
            back.push(...res.chunk);
            oldestEnd = res.end ?? null;
            if (!res.end) break;
            from = res.end;
        }
        const backBodies = back.filter((e) => e.type === "m.room.message").map((e) => e.content.body);
        assert.deepEqual(
            [...backBodies].reverse().concat(inSync),
            bodies,
            "older messages from /messages (dir=b) followed by the initial sync's timeline",
        );
        assert.equal(back.at(-1).type, "m.room.create", "backward pagination ends at m.room.create");
        const ids = back.map((e) => e.event_id);
        assert.equal(new Set(ids).size, ids.length, "no event is returned twice");

        // Forwards from the oldest position reached (or, when the server omitted that
        // end token, from the start of the room: "from" omitted, spec v1.3): every
        // message again, oldest first, and nothing twice.
        const fwd = [];
        from = oldestEnd;
        for (let page = 0; page < 30; page++) {
            const res = await fresh.client.createMessagesRequest(roomId, from, 10, "f");
            fwd.push(...res.chunk);
            if (!res.end || res.chunk.length === 0) break;
            from = res.end;
        }
        const fwdBodies = fwd.filter((e) => e.type === "m.room.message").map((e) => e.content.body);
        assert.deepEqual(fwdBodies, bodies, `/messages dir=f from ${oldestEnd ? "the oldest end token" : "the start"}`);
    });
});

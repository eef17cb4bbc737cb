// Server-side search through the SDK's searchRoomEvents and its paging.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { sharedRoom, User } from "../lib/harness.js";

const T = { timeout: 60000 };

describe("search: room events", () => {
    let alice, bob, a, b, roomId;
    before(async () => {
        alice = await User.register("se-alice");
        bob = await User.register("se-bob");
        a = await alice.startDevice();
        b = await bob.startDevice();
        roomId = await sharedRoom(a, [b]);
        await a.client.sendTextMessage(roomId, "the deployment finished");
        await b.client.sendTextMessage(roomId, "great, deploying the next one");
        await a.client.sendTextMessage(roomId, "unrelated chatter");
        for (let i = 0; i < 12; i++) await a.client.sendTextMessage(roomId, `pager message ${i}`);
    });
    after(() => {
        alice?.stopAll();
        bob?.stopAll();
    });

    it("finds messages by word prefix, with highlights and context", T, async () => {
        const res = await b.client.searchRoomEvents({ term: "deploy" });
        assert.equal(res.count, 2);
        const bodies = res.results.map((r) => r.context.getEvent().getContent().body).sort();
        assert.deepEqual(bodies, ["great, deploying the next one", "the deployment finished"]);
        assert.ok(res.highlights.includes("deployment") && res.highlights.includes("deploying"), `highlights ${res.highlights}`);
        const timeline = res.results[0].context.getTimeline();
        assert.ok(timeline.length > 1, "context events around the result");
    });

    it("pages through more results with backPaginateRoomEventsSearch", T, async () => {
        let res = await a.client.searchRoomEvents({ term: "pager", filter: { limit: 5 } });
        assert.equal(res.count, 12);
        assert.equal(res.results.length, 5);
        while (res.next_batch) res = await a.client.backPaginateRoomEventsSearch(res);
        const ids = new Set(res.results.map((r) => r.context.getEvent().getId()));
        assert.equal(ids.size, 12);
    });

    it("a user outside the room finds nothing", T, async () => {
        const carol = await User.register("se-carol");
        const c = await carol.startDevice();
        try {
            const res = await c.client.searchRoomEvents({ term: "deploy" });
            assert.equal(res.results.length, 0);
        } finally {
            carol.stopAll();
        }
    });
});

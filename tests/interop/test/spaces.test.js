// Spaces: a space with child rooms browsed through the SDK's getRoomHierarchy,
// by a member and by a user who has joined nothing.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { SERVER_NAME, User, uniqueName } from "../lib/harness.js";

const T = { timeout: 60000 };

describe("spaces: hierarchy", () => {
    let alice, bob, a, b, space, lobby, dev, secret, sub, deep;
    before(async () => {
        alice = await User.register("sp-alice");
        bob = await User.register("sp-bob");
        a = await alice.startDevice();
        b = await bob.startDevice();
        const mk = async (opts) => (await a.client.createRoom({ name: uniqueName("sp"), ...opts })).room_id;
        space = await mk({ preset: "public_chat", creation_content: { type: "m.space" } });
        lobby = await mk({ preset: "public_chat", topic: "say hello" });
        dev = await mk({ preset: "public_chat" });
        secret = await mk({ preset: "private_chat" });
        sub = await mk({ preset: "public_chat", creation_content: { type: "m.space" } });
        deep = await mk({ preset: "public_chat" });
        const child = (parent, room, extra = {}) =>
            a.client.sendStateEvent(parent, "m.space.child", { via: [SERVER_NAME], ...extra }, room);
        await child(space, dev, { order: "b" });
        await child(space, lobby, { order: "a", suggested: true });
        await child(space, secret, { order: "c" });
        await child(space, sub, { order: "d" });
        await child(sub, deep);
        await a.client.sendStateEvent(lobby, "m.space.parent", { via: [SERVER_NAME], canonical: true }, space);
    });
    after(() => {
        alice?.stopAll();
        bob?.stopAll();
    });

    it("the owner sees every room, breadth first in the children's order", T, async () => {
        const res = await a.client.getRoomHierarchy(space);
        assert.deepEqual(
            res.rooms.map((r) => r.room_id),
            [space, lobby, dev, secret, sub, deep],
        );
        const top = res.rooms[0];
        assert.equal(top.room_type, "m.space");
        assert.equal(top.children_state.length, 4);
        assert.ok(top.children_state.every((c) => c.type === "m.space.child" && c.origin_server_ts > 0));
        assert.equal(res.rooms[1].topic, "say hello");
        assert.equal(res.next_batch, undefined);
    });

    it("a non-member sees the public rooms only, and pages with limit", T, async () => {
        const first = await b.client.getRoomHierarchy(space, 2);
        assert.deepEqual(first.rooms.map((r) => r.room_id), [space, lobby]);
        assert.ok(first.next_batch, "a next_batch for the rest");
        const rest = await b.client.getRoomHierarchy(space, 10, undefined, false, first.next_batch);
        assert.deepEqual(rest.rooms.map((r) => r.room_id), [dev, sub, deep]);
    });

    it("max_depth and suggested_only narrow the walk", T, async () => {
        const shallow = await a.client.getRoomHierarchy(space, undefined, 1);
        assert.ok(!shallow.rooms.some((r) => r.room_id === deep));
        const suggested = await a.client.getRoomHierarchy(space, undefined, undefined, true);
        assert.deepEqual(suggested.rooms.map((r) => r.room_id), [space, lobby]);
    });

    it("a private room is not browsable by a non-member", T, async () => {
        await assert.rejects(b.client.getRoomHierarchy(secret), (e) => e.errcode === "M_FORBIDDEN");
    });
});

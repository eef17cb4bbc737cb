// Room name and topic changes, seen live and by a client that starts later.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { sharedRoom, User, waitUntil } from "../lib/harness.js";
import { RoomEvent } from "matrix-js-sdk";

const T = { timeout: 60000 };
const topicOf = (room) => room?.currentState.getStateEvents("m.room.topic", "")?.getContent().topic;

describe("room state: name and topic", () => {
    let alice, bob, a, b, roomId;
    before(async () => {
        alice = await User.register("st-alice");
        bob = await User.register("st-bob");
        a = await alice.startDevice();
        b = await bob.startDevice();
        roomId = await sharedRoom(a, [b], { name: "Old name", topic: "old topic" });
    });
    after(() => {
        alice?.stopAll();
        bob?.stopAll();
    });

    it("room name set by alice reaches bob (Room.name)", T, async () => {
        await waitUntil(() => b.room(roomId)?.name === "Old name", "bob sees the initial name", { device: b });
        const names = [];
        b.client.on(RoomEvent.Name, (room) => {
            if (room.roomId === roomId) names.push(room.name);
        });
        const { event_id } = await a.client.setRoomName(roomId, "New name");
        assert.match(event_id, /^\$/);
        await waitUntil(() => b.room(roomId)?.name === "New name", () => `bob's room name (is ${b.room(roomId)?.name})`, {
            device: b,
        });
        assert.ok(names.includes("New name"), "Room.name emitted on bob's client");
        const ev = b.room(roomId).currentState.getStateEvents("m.room.name", "");
        assert.equal(ev.getSender(), alice.userId);
        assert.equal(ev.getId(), event_id, "state event ID matches the one /state returned");
    });

    it("topic set by alice reaches bob", T, async () => {
        assert.equal(topicOf(b.room(roomId)), "old topic", "topic from createRoom");
        await a.client.setRoomTopic(roomId, "new topic");
        await waitUntil(() => topicOf(b.room(roomId)) === "new topic", () => `bob's topic (is ${topicOf(b.room(roomId))})`, {
            device: b,
        });
        const direct = await b.client.getStateEvent(roomId, "m.room.topic", "");
        assert.equal(direct.topic, "new topic", "GET /state/m.room.topic agrees");
    });

    it("a client started afterwards gets the current name and topic in its initial sync", T, async () => {
        const late = await bob.startDevice({}, "st-bob-late");
        const room = await waitUntil(() => late.room(roomId), "room in the late client's sync", { device: late });
        assert.equal(room.name, "New name");
        assert.equal(topicOf(room), "new topic");
    });

    it("a member without power cannot rename the room, and the name stays", T, async () => {
        // private_chat: bob's power level 0 is below the 50 m.room.name requires.
        await assert.rejects(b.client.setRoomName(roomId, "Hijacked"), (e) => {
            assert.equal(e.httpStatus, 403, `status: ${e.httpStatus} ${e.message}`);
            assert.equal(e.errcode, "M_FORBIDDEN");
            return true;
        });
        const { name } = await a.client.getStateEvent(roomId, "m.room.name", "");
        assert.equal(name, "New name");
    });
});

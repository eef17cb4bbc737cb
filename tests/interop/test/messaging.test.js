// Create a room, invite, join, and exchange messages through sync.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { BASE_URL, findRemoteEvent, User, waitUntil } from "../lib/harness.js";
import { RoomEvent } from "matrix-js-sdk";

const T = { timeout: 60000 };

async function putEvent(device, roomId, type, txnId, content) {
    const path = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/${encodeURIComponent(type)}/${encodeURIComponent(txnId)}`;
    const res = await fetch(new URL(path, BASE_URL), {
        method: "PUT",
        headers: { Authorization: `Bearer ${device.accessToken}`, "Content-Type": "application/json" },
        body: JSON.stringify(content),
    });
    const text = await res.text();
    assert.equal(res.status, 200, `PUT ${path}: ${res.status} ${text}`);
    return JSON.parse(text);
}

describe("rooms and messages", () => {
    let alice, bob, a, b, roomId;
    before(async () => {
        alice = await User.register("alice");
        bob = await User.register("bob");
        a = await alice.startDevice();
        b = await bob.startDevice();
    });
    after(() => {
        alice?.stopAll();
        bob?.stopAll();
    });

    it("createRoom: the creator's client gets the room with name and membership join", T, async () => {
        ({ room_id: roomId } = await a.client.createRoom({
            preset: "private_chat",
            visibility: "private",
            name: "Interop messaging",
            topic: "created by matrix-js-sdk",
        }));
        assert.match(roomId, /^!.+/);
        const room = await waitUntil(() => a.room(roomId), `room ${roomId} in alice's sync`, { device: a });
        await waitUntil(() => room.getMyMembership() === "join", "alice's membership is join", { device: a });
        await waitUntil(() => room.name === "Interop messaging", () => `room name from state (is ${room.name})`, { device: a });
        const create = room.currentState.getStateEvents("m.room.create", "");
        assert.ok(create, "m.room.create in room state");
        assert.equal(create.getSender(), alice.userId);
        const pl = room.currentState.getStateEvents("m.room.power_levels", "");
        assert.ok(pl, "m.room.power_levels in room state");
        // Room v12 ("hydra") gives creators unlimited power and keeps them out of the users map.
        const version = create.getContent().room_version ?? "1";
        if (version !== "12" && !version.includes("hydra")) {
            assert.equal(pl.getContent().users?.[alice.userId], 100, `creator has power level 100 in room v${version}`);
        }
        assert.equal(room.currentState.maySendStateEvent("m.room.power_levels", alice.userId), true, "creator may change power levels");
    });

    it("invite: bob's client sees the invite from alice, and joins", T, async () => {
        await a.client.invite(roomId, bob.userId);
        const room = await waitUntil(
            () => b.room(roomId)?.getMyMembership() === "invite" && b.room(roomId),
            "bob's sync has the room in rooms.invite",
            { device: b },
        );
        const inviteEv = room.currentState.getStateEvents("m.room.member", bob.userId);
        assert.equal(inviteEv?.getSender(), alice.userId, "the invite was sent by alice");
        assert.equal(room.name, "Interop messaging", "invite_state carries the room name");

        await b.client.joinRoom(roomId);
        await waitUntil(() => b.room(roomId)?.getMyMembership() === "join", "bob's membership becomes join", { device: b });
        await waitUntil(
            () => a.room(roomId)?.getMember(bob.userId)?.membership === "join",
            "alice sees bob's join through sync",
            { device: a },
        );
        const joined = await a.client.getJoinedRoomMembers(roomId);
        assert.deepEqual(Object.keys(joined.joined).sort(), [alice.userId, bob.userId].sort());
    });

    it("a message sent by alice reaches bob's timeline through sync", T, async () => {
        const seen = [];
        b.client.on(RoomEvent.Timeline, (ev, room, toStartOfTimeline) => {
            if (room?.roomId === roomId && !toStartOfTimeline && ev.getType() === "m.room.message") seen.push(ev);
        });
        const { event_id: eventId } = await a.client.sendTextMessage(roomId, "hello from alice");
        assert.match(eventId, /^\$/);
        const ev = await waitUntil(() => seen.find((e) => e.getId() === eventId), `bob's Room.timeline gets ${eventId}`, {
            device: b,
        });
        assert.equal(ev.getSender(), alice.userId);
        assert.equal(ev.getContent().body, "hello from alice");
        assert.equal(ev.getContent().msgtype, "m.text");
        assert.equal(ev.getRoomId(), roomId);
        assert.ok(ev.getTs() > 0, "origin_server_ts set");

        // Alice's own local echo is replaced by the remote echo.
        await waitUntil(() => findRemoteEvent(a.room(roomId), eventId), "alice's remote echo", { device: a });
    });

    it("bob's reply reaches alice, in order after her message", T, async () => {
        const { event_id: replyId } = await b.client.sendTextMessage(roomId, "hi alice");
        await waitUntil(() => findRemoteEvent(a.room(roomId), replyId), `alice's timeline gets ${replyId}`, { device: a });
        const bodies = a
            .room(roomId)
            .getLiveTimeline()
            .getEvents()
            .filter((e) => e.getType() === "m.room.message")
            .map((e) => e.getContent().body);
        assert.deepEqual(bodies.slice(-2), ["hello from alice", "hi alice"]);
    });

    it("the same message is not delivered twice (transaction ID retry is idempotent)", T, async () => {
        const txnId = `interop-${Date.now()}`;
        const content = { msgtype: "m.text", body: "once only" };
        // What the SDK does when it retries a send whose answer was lost.
        const r1 = await putEvent(a, roomId, "m.room.message", txnId, content);
        const r2 = await putEvent(a, roomId, "m.room.message", txnId, content);
        assert.equal(r2.event_id, r1.event_id, "same txnId returns the same event ID");
        await waitUntil(() => findRemoteEvent(b.room(roomId), r1.event_id), "bob gets the message", { device: b });
        const count = b
            .room(roomId)
            .getLiveTimeline()
            .getEvents()
            .filter((e) => e.getContent().body === "once only").length;
        assert.equal(count, 1, "bob's timeline has the message once");
    });
});

// Push rules drive notification counts: rules the SDK writes through
// /pushrules reach the user's other devices through /sync account data, the
// server's counts follow them, and the SDK's own evaluation of the same rules
// agrees with the server on two devices (unencrypted room: the SDK takes the
// server's counts as they are).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { BASE_URL, findRemoteEvent, sharedRoom, User, waitUntil } from "../lib/harness.js";
import { NotificationCountType, ReceiptType } from "matrix-js-sdk";

const T = { timeout: 90000 };
const total = (d, roomId) => d.room(roomId)?.getUnreadNotificationCount(NotificationCountType.Total);
const highlight = (d, roomId) => d.room(roomId)?.getUnreadNotificationCount(NotificationCountType.Highlight);
const hasRule = (d, kind, id) => (d.client.pushRules?.global?.[kind] ?? []).some((r) => r.rule_id === id);

async function counts(devices, roomId, want, what) {
    for (const d of devices) {
        await waitUntil(
            () => total(d, roomId) === want.total && highlight(d, roomId) === want.highlight,
            () => `${d.label}: ${what}: want total ${want.total} highlight ${want.highlight}, is ${total(d, roomId)} ${highlight(d, roomId)}`,
            { device: d },
        );
    }
}

async function received(devices, roomId, eventId) {
    for (const d of devices) {
        await waitUntil(() => findRemoteEvent(d.room(roomId), eventId), `${d.label} receives ${eventId}`, { device: d });
    }
    return devices.map((d) => d.room(roomId).findEventById(eventId));
}

describe("push rules and counts on two devices", () => {
    let alice, bob, a, b1, b2, roomId;
    before(async () => {
        alice = await User.register("pr-alice");
        bob = await User.register("pr-bob");
        a = await alice.startDevice();
        b1 = await bob.startDevice({}, "bob-phone");
        roomId = await sharedRoom(a, [b1]);
        b2 = await bob.startDevice({}, "bob-laptop");
        assert.equal(b1.room(roomId).hasEncryptionStateEvent(), false, "unencrypted room");
    });
    after(() => {
        alice?.stopAll();
        bob?.stopAll();
    });

    it("the initial sync carries the server-default rules", T, async () => {
        for (const d of [b1, b2]) {
            assert.ok(hasRule(d, "override", ".m.rule.master"), `${d.label}: .m.rule.master`);
            assert.ok(hasRule(d, "override", ".m.rule.is_user_mention"), `${d.label}: .m.rule.is_user_mention`);
            assert.ok(hasRule(d, "underride", ".m.rule.message"), `${d.label}: .m.rule.message`);
        }
    });

    it("a keyword rule set on one device highlights on both, as the SDK itself evaluates", T, async () => {
        await b1.client.addPushRule("global", "content", "deploy", {
            pattern: "deploy",
            actions: ["notify", { set_tweak: "highlight" }, { set_tweak: "sound", value: "default" }],
        });
        await waitUntil(() => hasRule(b2, "content", "deploy"), "the laptop learns the phone's rule through sync", {
            device: b2,
        });
        const { event_id } = await a.client.sendTextMessage(roomId, "deploy finished on all hosts");
        const evs = await received([b1, b2], roomId, event_id);
        await counts([b1, b2], roomId, { total: 1, highlight: 1 }, "after a keyword message");
        for (const [i, ev] of evs.entries()) {
            const actions = [b1, b2][i].client.getPushActionsForEvent(ev, true);
            assert.equal(actions?.notify, true, "SDK: notify");
            assert.equal(actions?.tweaks?.highlight, true, "SDK: highlight, like the server");
        }
    });

    it("a muted room does not count, and unmuting counts again", T, async () => {
        await b2.client.addPushRule("global", "room", roomId, { actions: [] });
        await waitUntil(() => hasRule(b1, "room", roomId), "the phone learns the mute", { device: b1 });
        const { event_id: noise } = await a.client.sendTextMessage(roomId, "noise");
        const evs = await received([b1, b2], roomId, noise);
        for (const [i, ev] of evs.entries()) {
            assert.equal([b1, b2][i].client.getPushActionsForEvent(ev, true)?.notify, false, "SDK: muted");
        }
        await counts([b1, b2], roomId, { total: 1, highlight: 1 }, "a muted message adds nothing");

        await b1.client.deletePushRule("global", "room", roomId);
        await waitUntil(() => !hasRule(b2, "room", roomId), "the laptop learns the unmute", { device: b2 });
        const { event_id: mention } = await a.client.sendMessage(roomId, {
            msgtype: "m.text",
            body: `${bob.localpart}: ping`,
            "m.mentions": { user_ids: [bob.userId] },
        });
        const mentionEvs = await received([b1, b2], roomId, mention);
        // Counts apply the user's current rules to the unread events, as the
        // SDK's own evaluation does: unmuted, "noise" counts as well.
        await counts([b1, b2], roomId, { total: 3, highlight: 2 }, "after unmuting and a mention");
        for (const [i, d] of [b1, b2].entries()) {
            const noiseEv = d.room(roomId).findEventById(noise);
            assert.equal(d.client.getPushActionsForEvent(noiseEv, true)?.notify, true, "SDK: noise notifies once unmuted");
            assert.equal(d.client.getPushActionsForEvent(mentionEvs[i], true)?.tweaks?.highlight, true, "SDK: mention highlights");
        }
    });

    it("a receipt from the phone clears both devices, and /notifications lists the highlights as read", T, async () => {
        const live = b1.room(roomId).getLiveTimeline().getEvents();
        const latest = live[live.length - 1];
        await b1.client.sendReadReceipt(latest, ReceiptType.Read);
        await counts([b2, b1], roomId, { total: 0, highlight: 0 }, "after the phone's receipt");

        const res = await fetch(`${BASE_URL}/_matrix/client/v3/notifications?only=highlight`, {
            headers: { Authorization: `Bearer ${b2.accessToken}` },
        });
        assert.equal(res.status, 200);
        const body = await res.json();
        const inRoom = body.notifications.filter((n) => n.room_id === roomId);
        assert.equal(inRoom.length, 2, `two highlights: ${JSON.stringify(body)}`);
        assert.ok(inRoom.every((n) => n.read === true), "both read after the receipt");
        assert.ok(inRoom.every((n) => n.actions.some((x) => x?.set_tweak === "highlight")), "highlight actions");
    });
});

package clientapi

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/account"
	"github.com/axon-matrix/axon/internal/appservice"
	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/threepid"
)

// Prefixes under which the versioned client API is served. r0 is kept
// because some clients and tools still use it.
var Prefixes = []string{"/_matrix/client/v3", "/_matrix/client/r0"}

// Mount is a route table with the prefixes it is served under.
type Mount struct {
	Prefixes []string
	Routes   []httpapi.Route
}

// Mounts is every client API table with its prefixes: the server mounts
// exactly these, and the sweep test walks them, so a new table is served
// and swept without further edits.
func (a *API) Mounts() []Mount {
	return []Mount{
		{Prefixes, a.Routes()},
		{[]string{"/_matrix/client/v1"}, a.V1Routes()},
		{MediaPrefixes, a.MediaRoutes()},
		{[]string{MediaV1Prefix}, a.MediaV1Routes()},
		{[]string{""}, a.UnversionedRoutes()},
		{[]string{""}, a.SlidingSyncRoutes()},
		{[]string{""}, a.UnstableRoutes()},
	}
}

// Routes is the client-server API route table, under Prefixes. Guest: true
// marks the endpoints the spec's guest access module lets guests use.
func (a *API) Routes() []httpapi.Route {
	const (
		no  = httpapi.NoAuth
		yes = httpapi.RequireAuth
	)
	return []httpapi.Route{
		// rooms.go
		{Method: http.MethodPost, Path: "/createRoom", Auth: yes, Limit: "message", Handler: a.createRoom},
		{Method: http.MethodPost, Path: "/join/{roomIdOrAlias}", Auth: yes, Handler: a.joinRoom},
		{Method: http.MethodPost, Path: "/rooms/{roomId}/join", Auth: yes, Guest: true, Handler: a.joinRoom},
		{Method: http.MethodPost, Path: "/knock/{roomIdOrAlias}", Auth: yes, Handler: a.knockRoom},
		{Method: http.MethodPost, Path: "/rooms/{roomId}/invite", Auth: yes, Handler: a.inviteUser},
		{Method: http.MethodPost, Path: "/rooms/{roomId}/leave", Auth: yes, Guest: true, Handler: a.leaveRoom},
		{Method: http.MethodPost, Path: "/rooms/{roomId}/forget", Auth: yes, Handler: a.forgetRoom},
		{Method: http.MethodPost, Path: "/rooms/{roomId}/kick", Auth: yes, Handler: a.kickUser},
		{Method: http.MethodPost, Path: "/rooms/{roomId}/ban", Auth: yes, Handler: a.banUser},
		{Method: http.MethodPost, Path: "/rooms/{roomId}/unban", Auth: yes, Handler: a.unbanUser},
		{Method: http.MethodGet, Path: "/joined_rooms", Auth: yes, Handler: a.joinedRooms},
		{Method: http.MethodPut, Path: "/rooms/{roomId}/send/{eventType}/{txnId}", Auth: yes, Guest: true, Limit: "message", Handler: a.sendMessage},
		{Method: http.MethodPut, Path: "/rooms/{roomId}/state/{eventType}/{stateKey...}", Auth: yes, Guest: true, Limit: "message", Handler: a.putState},
		{Method: http.MethodGet, Path: "/rooms/{roomId}/state/{eventType}/{stateKey...}", Auth: yes, Guest: true, Handler: a.getState},
		{Method: http.MethodGet, Path: "/rooms/{roomId}/state", Auth: yes, Guest: true, Handler: a.getAllState},
		{Method: http.MethodPut, Path: "/rooms/{roomId}/redact/{eventId}/{txnId}", Auth: yes, Limit: "message", Handler: a.redactEvent},
		{Method: http.MethodGet, Path: "/rooms/{roomId}/event/{eventId}", Auth: yes, Guest: true, Handler: a.getEvent},
		{Method: http.MethodGet, Path: "/rooms/{roomId}/members", Auth: yes, Guest: true, Handler: a.getMembers},
		{Method: http.MethodGet, Path: "/rooms/{roomId}/joined_members", Auth: yes, Handler: a.joinedMembers},
		{Method: http.MethodGet, Path: "/rooms/{roomId}/messages", Auth: yes, Guest: true, Handler: a.getMessages},
		{Method: http.MethodGet, Path: "/rooms/{roomId}/context/{eventId}", Auth: yes, Guest: true, Handler: a.getContext},
		{Method: http.MethodPost, Path: "/rooms/{roomId}/upgrade", Auth: yes, Limit: "message", Handler: a.upgradeRoom},

		// sync.go
		{Method: http.MethodGet, Path: "/sync", Auth: yes, Guest: true, Handler: a.sync},
		{Method: http.MethodPost, Path: "/user/{userId}/filter", Auth: yes, Handler: a.createFilter},
		{Method: http.MethodGet, Path: "/user/{userId}/filter/{filterId}", Auth: yes, Handler: a.getFilter},

		// peeking.go: room previews and the older sync API
		{Method: http.MethodGet, Path: "/events", Auth: yes, Guest: true, Handler: a.getEvents},
		{Method: http.MethodGet, Path: "/events/{eventId}", Auth: yes, Handler: a.getEventByID},
		{Method: http.MethodGet, Path: "/initialSync", Auth: yes, Handler: a.getInitialSync},
		{Method: http.MethodGet, Path: "/rooms/{roomId}/initialSync", Auth: yes, Guest: true, Handler: a.getRoomInitialSync},

		// misc.go
		{Method: http.MethodGet, Path: "/capabilities", Auth: yes, Handler: a.capabilities},

		// account.go
		{Method: http.MethodGet, Path: "/login", Auth: no, Handler: a.loginFlows},
		{Method: http.MethodPost, Path: "/login", Auth: no, Limit: "login", Handler: a.login},
		{Method: http.MethodPost, Path: "/logout", Auth: yes, AllowLocked: true, Handler: a.logout},
		{Method: http.MethodPost, Path: "/logout/all", Auth: yes, AllowLocked: true, Handler: a.logoutAll},
		// Refresh tokens carry 256 random bits, so the default limit is
		// enough; the login limit would throttle every client behind one
		// address refreshing every few minutes.
		{Method: http.MethodPost, Path: "/refresh", Auth: no, Handler: a.refresh},
		{Method: http.MethodGet, Path: "/account/whoami", Auth: yes, Guest: true, Handler: a.whoami},
		// auth_discovery.go: no SSO
		{Method: http.MethodGet, Path: "/login/sso/redirect", Auth: no, Handler: a.ssoRedirect},
		{Method: http.MethodGet, Path: "/login/sso/redirect/{idpId}", Auth: no, Handler: a.ssoRedirect},
		{Method: http.MethodPost, Path: "/register", Auth: no, Limit: "register", Handler: a.register},
		{Method: http.MethodGet, Path: "/register/available", Auth: no, Handler: a.registerAvailable},
		{Method: http.MethodPost, Path: "/account/password", Auth: httpapi.OptionalAuth, Limit: "login", Handler: a.changePassword},
		{Method: http.MethodPost, Path: "/account/deactivate", Auth: httpapi.OptionalAuth, Limit: "login", Handler: a.deactivateAccount},
		{Method: http.MethodGet, Path: "/devices", Auth: yes, Guest: true, Handler: a.getDevices},
		{Method: http.MethodGet, Path: "/devices/{deviceId}", Auth: yes, Guest: true, Handler: a.getDevice},
		{Method: http.MethodPut, Path: "/devices/{deviceId}", Auth: yes, Guest: true, Handler: a.putDevice},
		{Method: http.MethodDelete, Path: "/devices/{deviceId}", Auth: yes, Handler: a.deleteDevice},
		{Method: http.MethodPost, Path: "/delete_devices", Auth: yes, Handler: a.deleteDevices},
		{Method: http.MethodGet, Path: "/profile/{userId}", Auth: no, Handler: a.getProfile},
		{Method: http.MethodGet, Path: "/profile/{userId}/{keyName}", Auth: no, Handler: a.getProfileField},
		{Method: http.MethodPut, Path: "/profile/{userId}/{keyName}", Auth: yes, Handler: a.putProfileField},
		{Method: http.MethodDelete, Path: "/profile/{userId}/{keyName}", Auth: yes, Handler: a.deleteProfileField},
		// Guests may change their display name and no other profile field;
		// the literal path shadows {keyName}, so it needs every method.
		{Method: http.MethodGet, Path: "/profile/{userId}/displayname", Auth: no, Handler: a.getProfileField},
		{Method: http.MethodPut, Path: "/profile/{userId}/displayname", Auth: yes, Guest: true, Handler: a.putProfileField},
		{Method: http.MethodDelete, Path: "/profile/{userId}/displayname", Auth: yes, Guest: true, Handler: a.deleteProfileField},

		// openid.go: issuing is rate limited like logins (each token is a row)
		{Method: http.MethodPost, Path: "/user/{userId}/openid/request_token", Auth: yes, Limit: "login", Handler: a.requestOpenIDToken},

		// threepid.go
		{Method: http.MethodGet, Path: "/account/3pid", Auth: yes, Handler: a.threepids},
		{Method: http.MethodPost, Path: "/account/3pid", Auth: yes, Handler: a.postThreepids},
		{Method: http.MethodPost, Path: "/account/3pid/add", Auth: yes, Limit: "login", Handler: a.addThreepid},
		{Method: http.MethodPost, Path: "/account/3pid/bind", Auth: yes, Handler: a.bindThreepid},
		{Method: http.MethodPost, Path: "/account/3pid/delete", Auth: yes, Handler: a.deleteThreepid},
		{Method: http.MethodPost, Path: "/account/3pid/unbind", Auth: yes, Handler: a.unbindThreepid},
		{Method: http.MethodPost, Path: "/account/3pid/email/requestToken", Auth: no, Limit: "login", Handler: a.requestToken(account.PurposeAdd, threepid.MediumEmail)},
		{Method: http.MethodPost, Path: "/account/3pid/msisdn/requestToken", Auth: no, Limit: "login", Handler: a.requestToken(account.PurposeAdd, threepid.MediumMSISDN)},
		{Method: http.MethodPost, Path: "/account/password/email/requestToken", Auth: no, Limit: "login", Handler: a.requestToken(account.PurposePassword, threepid.MediumEmail)},
		{Method: http.MethodPost, Path: "/account/password/msisdn/requestToken", Auth: no, Limit: "login", Handler: a.requestToken(account.PurposePassword, threepid.MediumMSISDN)},
		{Method: http.MethodPost, Path: "/register/email/requestToken", Auth: no, Limit: "login", Handler: a.requestToken(account.PurposeRegister, threepid.MediumEmail)},
		{Method: http.MethodPost, Path: "/register/msisdn/requestToken", Auth: no, Limit: "login", Handler: a.requestToken(account.PurposeRegister, threepid.MediumMSISDN)},

		// receipts.go
		{Method: http.MethodPost, Path: "/rooms/{roomId}/receipt/{receiptType}/{eventId}", Auth: yes, Handler: a.postReceipt},
		{Method: http.MethodPost, Path: "/rooms/{roomId}/read_markers", Auth: yes, Handler: a.setReadMarkers},

		// typing.go
		{Method: http.MethodPut, Path: "/rooms/{roomId}/typing/{userId}", Auth: yes, Handler: a.setTyping},

		// account_data.go
		{Method: http.MethodGet, Path: "/user/{userId}/account_data/{type}", Auth: yes, Handler: a.getAccountData},
		{Method: http.MethodPut, Path: "/user/{userId}/account_data/{type}", Auth: yes, Handler: a.putAccountData},
		{Method: http.MethodGet, Path: "/user/{userId}/rooms/{roomId}/account_data/{type}", Auth: yes, Handler: a.getAccountData},
		{Method: http.MethodPut, Path: "/user/{userId}/rooms/{roomId}/account_data/{type}", Auth: yes, Handler: a.putAccountData},
		{Method: http.MethodGet, Path: "/user/{userId}/rooms/{roomId}/tags", Auth: yes, Handler: a.getTags},
		{Method: http.MethodPut, Path: "/user/{userId}/rooms/{roomId}/tags/{tag}", Auth: yes, Handler: a.putTag},
		{Method: http.MethodDelete, Path: "/user/{userId}/rooms/{roomId}/tags/{tag}", Auth: yes, Handler: a.deleteTag},

		// presence.go
		{Method: http.MethodGet, Path: "/presence/{userId}/status", Auth: yes, Handler: a.getPresence},
		{Method: http.MethodPut, Path: "/presence/{userId}/status", Auth: yes, Handler: a.putPresence},

		// keys.go
		{Method: http.MethodPost, Path: "/keys/upload", Auth: yes, Guest: true, Handler: a.uploadKeys},
		{Method: http.MethodPost, Path: "/keys/query", Auth: yes, Guest: true, Handler: a.queryKeys},
		{Method: http.MethodPost, Path: "/keys/claim", Auth: yes, Guest: true, Handler: a.claimKeys},
		{Method: http.MethodGet, Path: "/keys/changes", Auth: yes, Handler: a.keyChanges},
		{Method: http.MethodPost, Path: "/keys/device_signing/upload", Auth: yes, Handler: a.uploadDeviceSigning},
		{Method: http.MethodPost, Path: "/keys/signatures/upload", Auth: yes, Handler: a.uploadSignatures},

		// room_keys.go
		{Method: http.MethodPost, Path: "/room_keys/version", Auth: yes, Handler: a.createBackupVersion},
		{Method: http.MethodGet, Path: "/room_keys/version", Auth: yes, Handler: a.getBackupVersion},
		{Method: http.MethodGet, Path: "/room_keys/version/{version}", Auth: yes, Handler: a.getBackupVersion},
		{Method: http.MethodPut, Path: "/room_keys/version/{version}", Auth: yes, Handler: a.putBackupVersion},
		{Method: http.MethodDelete, Path: "/room_keys/version/{version}", Auth: yes, Handler: a.deleteBackupVersion},
		{Method: http.MethodPut, Path: "/room_keys/keys", Auth: yes, Handler: a.putRoomKeys},
		{Method: http.MethodGet, Path: "/room_keys/keys", Auth: yes, Handler: a.getRoomKeys},
		{Method: http.MethodDelete, Path: "/room_keys/keys", Auth: yes, Handler: a.deleteRoomKeys},
		{Method: http.MethodPut, Path: "/room_keys/keys/{roomId}", Auth: yes, Handler: a.putRoomKeys},
		{Method: http.MethodGet, Path: "/room_keys/keys/{roomId}", Auth: yes, Handler: a.getRoomKeys},
		{Method: http.MethodDelete, Path: "/room_keys/keys/{roomId}", Auth: yes, Handler: a.deleteRoomKeys},
		{Method: http.MethodPut, Path: "/room_keys/keys/{roomId}/{sessionId}", Auth: yes, Handler: a.putRoomKeys},
		{Method: http.MethodGet, Path: "/room_keys/keys/{roomId}/{sessionId}", Auth: yes, Handler: a.getRoomKeys},
		{Method: http.MethodDelete, Path: "/room_keys/keys/{roomId}/{sessionId}", Auth: yes, Handler: a.deleteRoomKeys},

		// to_device.go
		{Method: http.MethodPut, Path: "/sendToDevice/{eventType}/{txnId}", Auth: yes, Guest: true, Handler: a.sendToDevice},

		// directory.go
		{Method: http.MethodGet, Path: "/directory/room/{roomAlias}", Auth: no, Handler: a.getRoomAlias},
		{Method: http.MethodPut, Path: "/directory/room/{roomAlias}", Auth: yes, Handler: a.putRoomAlias},
		{Method: http.MethodDelete, Path: "/directory/room/{roomAlias}", Auth: yes, Handler: a.deleteRoomAlias},
		{Method: http.MethodGet, Path: "/rooms/{roomId}/aliases", Auth: yes, Handler: a.getLocalAliases},
		{Method: http.MethodGet, Path: "/directory/list/room/{roomId}", Auth: no, Handler: a.getDirectoryVisibility},
		{Method: http.MethodPut, Path: "/directory/list/room/{roomId}", Auth: yes, Handler: a.putDirectoryVisibility},
		{Method: http.MethodGet, Path: "/publicRooms", Auth: httpapi.OptionalAuth, Guest: true, Handler: a.getPublicRooms},
		{Method: http.MethodPost, Path: "/publicRooms", Auth: yes, Handler: a.postPublicRooms},

		// search.go
		{Method: http.MethodPost, Path: "/search", Auth: yes, Handler: a.search},

		// user_directory.go
		{Method: http.MethodPost, Path: "/user_directory/search", Auth: yes, Handler: a.searchUserDirectory},

		// pushrules.go
		{Method: http.MethodGet, Path: "/pushrules/{$}", Auth: yes, Handler: a.getPushRules},
		{Method: http.MethodGet, Path: "/pushrules/global/{$}", Auth: yes, Handler: a.getGlobalPushRules},
		{Method: http.MethodGet, Path: "/pushrules/global/{kind}/{ruleId}", Auth: yes, Handler: a.getPushRule},
		{Method: http.MethodPut, Path: "/pushrules/global/{kind}/{ruleId}", Auth: yes, Handler: a.putPushRule},
		{Method: http.MethodDelete, Path: "/pushrules/global/{kind}/{ruleId}", Auth: yes, Handler: a.deletePushRule},
		{Method: http.MethodGet, Path: "/pushrules/global/{kind}/{ruleId}/enabled", Auth: yes, Handler: a.getPushRuleEnabled},
		{Method: http.MethodPut, Path: "/pushrules/global/{kind}/{ruleId}/enabled", Auth: yes, Handler: a.putPushRuleEnabled},
		{Method: http.MethodGet, Path: "/pushrules/global/{kind}/{ruleId}/actions", Auth: yes, Handler: a.getPushRuleActions},
		{Method: http.MethodPut, Path: "/pushrules/global/{kind}/{ruleId}/actions", Auth: yes, Handler: a.putPushRuleActions},

		// pushers.go
		{Method: http.MethodGet, Path: "/pushers", Auth: yes, Handler: a.getPushers},
		{Method: http.MethodPost, Path: "/pushers/set", Auth: yes, Handler: a.setPusher},
		{Method: http.MethodGet, Path: "/notifications", Auth: yes, Handler: a.getNotifications},

		// reports.go
		{Method: http.MethodPost, Path: "/rooms/{roomId}/report/{eventId}", Auth: yes, Limit: "message", Handler: a.reportEvent},
		{Method: http.MethodPost, Path: "/rooms/{roomId}/report", Auth: yes, Limit: "message", Handler: a.reportRoom},
		{Method: http.MethodPost, Path: "/users/{userId}/report", Auth: yes, Limit: "message", Handler: a.reportUser},

		// voip.go
		{Method: http.MethodGet, Path: "/voip/turnServer", Auth: yes, Handler: a.getTURNServer},

		// whois.go
		{Method: http.MethodGet, Path: "/admin/whois/{userId}", Auth: yes, Handler: a.getWhois},

		// appservice.go, thirdparty.go
		{Method: http.MethodPut, Path: "/directory/list/appservice/{networkId}/{roomId}", Auth: yes, Handler: a.putAppServiceRoomVisibility},
		{Method: http.MethodGet, Path: "/thirdparty/protocols", Auth: yes, Handler: a.getProtocols},
		{Method: http.MethodGet, Path: "/thirdparty/protocol/{protocol}", Auth: yes, Handler: a.getProtocol},
		{Method: http.MethodGet, Path: "/thirdparty/location/{protocol}", Auth: yes, Handler: a.thirdPartyByProtocol(appservice.ThirdPartyLocation)},
		{Method: http.MethodGet, Path: "/thirdparty/user/{protocol}", Auth: yes, Handler: a.thirdPartyByProtocol(appservice.ThirdPartyUser)},
		{Method: http.MethodGet, Path: "/thirdparty/location", Auth: yes, Handler: a.thirdPartyReverse(appservice.ThirdPartyLocation, "alias")},
		{Method: http.MethodGet, Path: "/thirdparty/user", Auth: yes, Handler: a.thirdPartyReverse(appservice.ThirdPartyUser, "userid")},
	}
}

// MediaPrefixes are where the legacy (unauthenticated) media API lives.
var MediaPrefixes = []string{"/_matrix/media/v3", "/_matrix/media/r0"}

// MediaRoutes are served under MediaPrefixes; the authenticated media
// endpoints are in V1Routes under /_matrix/client/v1/media.
func (a *API) MediaRoutes() []httpapi.Route {
	const (
		no     = httpapi.NoAuth
		yes    = httpapi.RequireAuth
		legacy = true
	)
	return []httpapi.Route{
		// media.go
		{Method: http.MethodPost, Path: "/upload", Auth: yes, MaxBodyBytes: httpapi.NoBodyLimit, Handler: a.mediaUpload},
		{Method: http.MethodPut, Path: "/upload/{serverName}/{mediaId}", Auth: yes, MaxBodyBytes: httpapi.NoBodyLimit, Handler: a.mediaUploadTo},
		{Method: http.MethodGet, Path: "/download/{serverName}/{mediaId}", Auth: no, Handler: a.mediaDownload(legacy)},
		{Method: http.MethodGet, Path: "/download/{serverName}/{mediaId}/{fileName}", Auth: no, Handler: a.mediaDownload(legacy)},
		{Method: http.MethodGet, Path: "/thumbnail/{serverName}/{mediaId}", Auth: no, Handler: a.mediaThumbnail(legacy)},
		{Method: http.MethodGet, Path: "/config", Auth: yes, Handler: a.mediaConfig},
		{Method: http.MethodGet, Path: "/preview_url", Auth: yes, Handler: a.mediaPreviewURL},
	}
}

// MediaV1Prefix is where POST /create lives (still under /_matrix/media).
const MediaV1Prefix = "/_matrix/media/v1"

// MediaV1Routes are served under MediaV1Prefix.
func (a *API) MediaV1Routes() []httpapi.Route {
	return []httpapi.Route{
		// media.go
		{Method: http.MethodPost, Path: "/create", Auth: httpapi.RequireAuth, Handler: a.mediaCreate},
	}
}

// V1Routes are served under /_matrix/client/v1.
func (a *API) V1Routes() []httpapi.Route {
	const yes = httpapi.RequireAuth
	return []httpapi.Route{
		{Method: http.MethodGet, Path: "/rooms/{roomId}/relations/{eventId}", Auth: yes, Handler: a.getRelations},
		{Method: http.MethodGet, Path: "/rooms/{roomId}/relations/{eventId}/{relType}", Auth: yes, Handler: a.getRelations},
		{Method: http.MethodGet, Path: "/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}", Auth: yes, Handler: a.getRelations},
		{Method: http.MethodGet, Path: "/rooms/{roomId}/threads", Auth: yes, Handler: a.getThreads},
		// timestamp.go
		{Method: http.MethodGet, Path: "/rooms/{roomId}/timestamp_to_event", Auth: yes, Handler: a.getTimestampToEvent},
		// mutual_rooms.go
		{Method: http.MethodGet, Path: "/mutual_rooms", Auth: yes, Handler: a.getMutualRooms},
		{Method: http.MethodGet, Path: "/user/mutual_rooms", Auth: yes, Handler: a.getMutualRooms},
		// login_token.go
		{Method: http.MethodPost, Path: "/login/get_token", Auth: yes, Limit: "login", Handler: a.getLoginToken},
		// hierarchy.go
		{Method: http.MethodGet, Path: "/rooms/{roomId}/hierarchy", Auth: yes, Handler: a.getHierarchy},
		// room_summary.go
		{Method: http.MethodGet, Path: "/room_summary/{roomIdOrAlias}", Auth: httpapi.OptionalAuth, Guest: true, Handler: a.getRoomSummary},
		// media.go (authenticated media, spec v1.11)
		{Method: http.MethodGet, Path: "/media/config", Auth: yes, Handler: a.mediaConfig},
		{Method: http.MethodGet, Path: "/media/download/{serverName}/{mediaId}", Auth: yes, Guest: true, Handler: a.mediaDownload(false)},
		{Method: http.MethodGet, Path: "/media/download/{serverName}/{mediaId}/{fileName}", Auth: yes, Guest: true, Handler: a.mediaDownload(false)},
		{Method: http.MethodGet, Path: "/media/thumbnail/{serverName}/{mediaId}", Auth: yes, Guest: true, Handler: a.mediaThumbnail(false)},
		{Method: http.MethodGet, Path: "/media/preview_url", Auth: yes, Handler: a.mediaPreviewURL},
		// auth_discovery.go: no OAuth 2.0 API
		{Method: http.MethodGet, Path: "/auth_metadata", Auth: httpapi.NoAuth, Handler: a.authMetadata},
		// moderation.go
		{Method: http.MethodGet, Path: "/admin/lock/{userId}", Auth: yes, Handler: a.getRestriction(account.Lock)},
		{Method: http.MethodPut, Path: "/admin/lock/{userId}", Auth: yes, Handler: a.putRestriction(account.Lock)},
		{Method: http.MethodGet, Path: "/admin/suspend/{userId}", Auth: yes, Handler: a.getRestriction(account.Suspend)},
		{Method: http.MethodPut, Path: "/admin/suspend/{userId}", Auth: yes, Handler: a.putRestriction(account.Suspend)},
		// account.go
		{Method: http.MethodGet, Path: "/register/m.login.registration_token/validity", Auth: httpapi.NoAuth, Limit: "login", Handler: a.registrationTokenValidity},
		// appservice.go
		{Method: http.MethodPost, Path: "/appservice/{appserviceId}/ping", Auth: yes, Handler: a.pingAppService},
	}
}

// SlidingSyncRoutes are simplified sliding sync (MSC4186, slidingsync.go)
// at its unstable path, the one Element X uses, and at v4.
func (a *API) SlidingSyncRoutes() []httpapi.Route {
	const yes = httpapi.RequireAuth
	return []httpapi.Route{
		{Method: http.MethodPost, Path: "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync", Auth: yes, Handler: a.slidingSync},
		{Method: http.MethodPost, Path: "/_matrix/client/v4/sync", Auth: yes, Handler: a.slidingSync},
	}
}

// UnstableRoutes are endpoints of MSCs the spec has not merged yet, at
// their unstable paths.
func (a *API) UnstableRoutes() []httpapi.Route {
	const (
		yes     = httpapi.RequireAuth
		msc3391 = "/_matrix/client/unstable/org.matrix.msc3391"
	)
	routes := []httpapi.Route{
		// account_data.go: deleting account data (MSC3391)
		{Method: http.MethodDelete, Path: msc3391 + "/user/{userId}/account_data/{type}", Auth: yes, Handler: a.deleteAccountData},
		{Method: http.MethodDelete, Path: msc3391 + "/user/{userId}/rooms/{roomId}/account_data/{type}", Auth: yes, Handler: a.deleteAccountData},
	}
	if a.Cfg != nil && a.Cfg.Experimental.ThreadSubscriptions {
		// thread_subscriptions.go (MSC4306)
		const sub = "/_matrix/client/unstable/io.element.msc4306/rooms/{roomId}/thread/{eventId}/subscription"
		routes = append(routes,
			httpapi.Route{Method: http.MethodGet, Path: sub, Auth: yes, Handler: a.getThreadSubscription},
			httpapi.Route{Method: http.MethodPut, Path: sub, Auth: yes, Handler: a.putThreadSubscription},
			httpapi.Route{Method: http.MethodDelete, Path: sub, Auth: yes, Handler: a.deleteThreadSubscription},
			// MSC4308's companion to its sliding sync extension
			httpapi.Route{Method: http.MethodGet, Path: "/_matrix/client/unstable/io.element.msc4308/thread_subscriptions", Auth: yes, Handler: a.getThreadSubscriptionChanges},
		)
	}
	return routes
}

// UnversionedRoutes are served at fixed paths.
func (a *API) UnversionedRoutes() []httpapi.Route {
	const no = httpapi.NoAuth
	return []httpapi.Route{
		{Method: http.MethodGet, Path: "/_matrix/client/versions", Auth: httpapi.OptionalAuth, AllowLocked: true, Guest: true, Handler: a.versions},
		{Method: http.MethodGet, Path: "/.well-known/matrix/client", Auth: no, Handler: a.wellKnown},
		// support.go
		{Method: http.MethodGet, Path: "/.well-known/matrix/support", Auth: no, Handler: a.getSupport},
		// misc.go
		{Method: http.MethodGet, Path: "/.well-known/matrix/policy_server", Auth: no, Handler: a.policyServer},
		// threepid.go: the pages email validation links open, and the submit_url
		{Method: http.MethodGet, Path: threepid.ValidatePath, Auth: no, Limit: "login", Handler: a.getEmailValidation},
		{Method: http.MethodPost, Path: threepid.ValidatePath, Auth: no, Limit: "login", Handler: a.postEmailValidation},
		{Method: http.MethodPost, Path: threepid.SubmitTokenPath, Auth: no, Limit: "login", Handler: a.submitToken},
		// account.go: Synapse's shared-secret registration (register_new_matrix_user).
		// Nonces are unauthenticated and their store is bounded (oldest go
		// first): the registration limit keeps a flood from evicting the
		// nonce an administrator is about to use.
		{Method: http.MethodGet, Path: "/_synapse/admin/v1/register", Auth: no, Limit: "register", Handler: a.sharedSecretNonce},
		{Method: http.MethodPost, Path: "/_synapse/admin/v1/register", Auth: no, Handler: a.sharedSecretRegister},
		// servernotices.go: Synapse's admin API for server notices (admins only)
		{Method: http.MethodPost, Path: "/_synapse/admin/v1/send_server_notice", Auth: httpapi.RequireAuth, Handler: a.sendServerNotice},
		{Method: http.MethodPut, Path: "/_synapse/admin/v1/send_server_notice/{txnId}", Auth: httpapi.RequireAuth, Handler: a.sendServerNotice},
	}
}

package rooms

import (
	"context"
	"encoding/json"

	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/mxerr"
)

// Room version 12 (MSC4289) gives the room's creators unlimited power and
// forbids listing them in m.room.power_levels' users. The authorisation
// rules refuse such an event as forbidden (403); for a client it is a
// malformed request, so it is refused here first with 400 M_BAD_JSON, as
// are additional_creators that are not a list of user IDs.

// parseAdditionalCreators reads creation_content.additional_creators.
func parseAdditionalCreators(raw json.RawMessage) ([]string, error) {
	if raw == nil {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, mxerr.BadJSON("additional_creators must be a list of user IDs")
	}
	for _, u := range list {
		if _, _, err := id.UserID(u).ParseAndValidateRelaxed(); err != nil {
			return nil, mxerr.BadJSON("Invalid user ID in additional_creators: %q", u)
		}
	}
	return list, nil
}

// checkCreatorsNotListed refuses power levels content that gives one of
// creators a level.
func checkCreatorsNotListed(content []byte, creators map[string]bool) error {
	var pl struct {
		Users map[string]json.RawMessage `json:"users"`
	}
	if json.Unmarshal(content, &pl) != nil {
		return nil // the content checks refuse it
	}
	for u := range pl.Users {
		if creators[u] {
			return mxerr.BadJSON("%s is a creator of this room: creators have unlimited power in room version 12 and may not be listed in power levels", u)
		}
	}
	return nil
}

// checkPowerLevelsCreators applies checkCreatorsNotListed to power levels
// sent to an existing room.
func (s *Service) checkPowerLevelsCreators(ctx context.Context, req SendRequest) error {
	if req.Type != "m.room.power_levels" || req.StateKey == nil || *req.StateKey != "" {
		return nil
	}
	version, err := s.RoomVersion(ctx, req.RoomID)
	if err != nil || !version.PrivilegedRoomCreators() {
		return err
	}
	pl, err := s.PowerLevels(ctx, req.RoomID)
	if err != nil {
		return err
	}
	return checkCreatorsNotListed(req.Content, pl.creators)
}

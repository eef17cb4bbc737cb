package directory

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/axon-matrix/axon/internal/mxerr"
)

// PublicRoomsRequest is a /publicRooms query (GET or POST).
type PublicRoomsRequest struct {
	Server             string
	Limit              int
	Since              string
	SearchTerm         string
	RoomTypes          []*string // a nil entry matches rooms without a type; empty: any type
	IncludeAllNetworks bool
	ThirdPartyInstance string
}

// PublicRoomsResponse is the published room directory page.
type PublicRoomsResponse struct {
	Chunk                  []*PublicRoom `json:"chunk"`
	NextBatch              string        `json:"next_batch,omitempty"`
	PrevBatch              string        `json:"prev_batch,omitempty"`
	TotalRoomCountEstimate int           `json:"total_room_count_estimate"`
}

// maxPublicRooms bounds a page when the client gives no (or a huge) limit.
const maxPublicRooms = 500

// PublicRooms lists the published rooms, largest first, in pages. Page
// tokens are offsets into that order: "n<i>" starts a page at i and
// "p<i>" is the page that ends just before i.
func (s *Service) PublicRooms(ctx context.Context, req PublicRoomsRequest) (*PublicRoomsResponse, error) {
	if req.Server != "" && req.Server != s.serverName {
		return nil, mxerr.NotFound("Listing the rooms of other servers is not supported")
	}
	resp := &PublicRoomsResponse{Chunk: []*PublicRoom{}}
	limit := req.Limit
	if limit <= 0 || limit > maxPublicRooms {
		limit = maxPublicRooms
	}
	start, end := 0, -1
	if req.Since != "" {
		n, err := strconv.Atoi(req.Since[1:])
		if err != nil || n < 0 || (req.Since[0] != 'n' && req.Since[0] != 'p') {
			return nil, mxerr.InvalidParam("Invalid pagination token")
		}
		if req.Since[0] == 'n' {
			start = n
		} else {
			end = n
			start = max(0, n-limit)
		}
	}

	ids, err := s.listedRooms(ctx, req)
	if err != nil {
		return nil, err
	}
	raw := strings.TrimSpace(req.SearchTerm)
	term := strings.ToLower(raw)
	var matched []*PublicRoom
	for _, id := range ids {
		pr, err := s.summarise(ctx, id)
		if err != nil {
			return nil, err
		}
		if !pr.peekable() || pr.NumJoinedMembers == 0 {
			continue
		}
		resp.TotalRoomCountEstimate++
		if term != "" && !pr.matches(raw, term) {
			continue
		}
		if len(req.RoomTypes) > 0 && !typeWanted(req.RoomTypes, pr.RoomType) {
			continue
		}
		matched = append(matched, pr)
	}
	sort.Slice(matched, func(i, j int) bool {
		if matched[i].NumJoinedMembers != matched[j].NumJoinedMembers {
			return matched[i].NumJoinedMembers > matched[j].NumJoinedMembers
		}
		return matched[i].RoomID < matched[j].RoomID
	})
	if end < 0 || end > len(matched) {
		end = min(len(matched), start+limit)
	}
	if start > end {
		start = end
	}
	resp.Chunk = append(resp.Chunk, matched[start:end]...)
	if end < len(matched) {
		resp.NextBatch = "n" + strconv.Itoa(end)
	}
	if start > 0 {
		resp.PrevBatch = "p" + strconv.Itoa(start)
	}
	return resp, nil
}

// listedRooms picks the directory to list: the server's own by default,
// one application service network's with third_party_instance_id, or
// both with include_all_networks.
func (s *Service) listedRooms(ctx context.Context, req PublicRoomsRequest) ([]string, error) {
	var ids []string
	if req.ThirdPartyInstance == "" {
		var err error
		if ids, err = s.db.PublishedRooms(ctx); err != nil {
			return nil, fmt.Errorf("published rooms: %w", err)
		}
	}
	if s.AppServices == nil || (req.ThirdPartyInstance == "" && !req.IncludeAllNetworks) {
		return ids, nil
	}
	more, err := s.AppServices.NetworkRooms(ctx, req.ThirdPartyInstance, req.IncludeAllNetworks)
	if err != nil {
		return nil, fmt.Errorf("network rooms: %w", err)
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		seen[id] = true
	}
	for _, id := range more {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// matches reports whether a lower-cased search term occurs in the room's
// name, topic or aliases, or the raw term is its room ID.
func (pr *PublicRoom) matches(raw, term string) bool {
	if pr.RoomID == raw || strings.Contains(strings.ToLower(pr.Name), term) ||
		strings.Contains(strings.ToLower(pr.Topic), term) || strings.Contains(strings.ToLower(pr.CanonicalAlias), term) {
		return true
	}
	for _, a := range pr.altAliases {
		if strings.Contains(strings.ToLower(a), term) {
			return true
		}
	}
	return false
}

func typeWanted(types []*string, roomType string) bool {
	for _, t := range types {
		if (t == nil && roomType == "") || (t != nil && *t == roomType) {
			return true
		}
	}
	return false
}

package account

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/axon-matrix/axon/internal/auth"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// Authentication types of the user-interactive authentication API.
const (
	StagePassword          = "m.login.password"
	StageDummy             = "m.login.dummy"
	StageRegistrationToken = "m.login.registration_token"
	StageEmailIdentity     = "m.login.email.identity"
)

// Identifier is a user identifier object (m.id.user, m.id.thirdparty,
// m.id.phone).
type Identifier struct {
	Type    string `json:"type"`
	User    string `json:"user,omitempty"`
	Medium  string `json:"medium,omitempty"`
	Address string `json:"address,omitempty"`
	Country string `json:"country,omitempty"`
	Phone   string `json:"phone,omitempty"`
}

// AuthDict is the "auth" object of a request to an endpoint protected by
// user-interactive authentication.
type AuthDict struct {
	Type       string      `json:"type"`
	Session    string      `json:"session"`
	Identifier *Identifier `json:"identifier"`
	User       string      `json:"user"` // deprecated form of identifier
	Password   string      `json:"password"`
	Token      string      `json:"token"`
	// ThreepidCreds are the m.login.email.identity credentials; some
	// older clients spell the key threePidCreds.
	ThreepidCreds       *ThreepidCreds `json:"threepid_creds"`
	ThreepidCredsLegacy *ThreepidCreds `json:"threePidCreds"`
}

// ThreepidCreds identify a 3PID validation session.
type ThreepidCreds struct {
	SID           string `json:"sid"`
	ClientSecret  string `json:"client_secret"`
	IDServer      string `json:"id_server"`
	IDAccessToken string `json:"id_access_token"`
}

func (a *AuthDict) threepidCreds() *ThreepidCreds {
	if a.ThreepidCreds != nil {
		return a.ThreepidCreds
	}
	return a.ThreepidCredsLegacy
}

// Flow is one sequence of stages that completes authentication.
type Flow struct {
	Stages []string `json:"stages"`
}

// AuthRequired is the answer of an endpoint whose user-interactive
// authentication is not complete yet. The HTTP edge writes it as a 401
// with Body; it deliberately carries no errcode unless a stage failed,
// because clients show any errcode to the user as a failure.
type AuthRequired struct {
	Flows     []Flow
	Params    map[string]any
	Session   string
	Completed []string
	Err       *mxerr.Error // the failed attempt, if any
}

func (e *AuthRequired) Error() string {
	if e.Err != nil {
		return "user-interactive authentication required: " + e.Err.Error()
	}
	return "user-interactive authentication required"
}

// Body is the JSON object of the 401 response.
func (e *AuthRequired) Body() map[string]any {
	params := e.Params
	if params == nil {
		params = map[string]any{}
	}
	completed := e.Completed
	if completed == nil {
		completed = []string{}
	}
	body := map[string]any{"flows": e.Flows, "params": params, "session": e.Session, "completed": completed}
	if e.Err != nil {
		body["errcode"] = e.Err.Code
		body["error"] = e.Err.Msg
	}
	return body
}

// uiaTTL is how long an authentication session lives after its last use.
const uiaTTL = 30 * time.Minute

// maxUIASessions caps sessions: /register is unauthenticated, so anyone
// can open them.
const maxUIASessions = 10000

// uiaSession is the server side of one user-interactive authentication.
type uiaSession struct {
	id        string
	op        string // the operation it authorises; may not change
	user      string // the account it authenticates ("" until known for register)
	completed []string
	regToken  string // the registration token that completed its stage
	// threepid is the address proven by the m.login.email.identity stage,
	// and threepidSID its validation session, spent when the operation
	// succeeds.
	threepid    *storage.Threepid
	threepidSID string
	expires     time.Time
}

type uiaStore struct {
	mu       sync.Mutex
	now      func() time.Time
	sessions map[string]*uiaSession
}

func newUIAStore(now func() time.Time) *uiaStore {
	return &uiaStore{now: now, sessions: make(map[string]*uiaSession)}
}

func (st *uiaStore) create(op, user string) *uiaSession {
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	if len(st.sessions) >= maxUIASessions {
		var oldest *uiaSession
		for id, s := range st.sessions {
			if now.After(s.expires) {
				delete(st.sessions, id)
			} else if oldest == nil || s.expires.Before(oldest.expires) {
				oldest = s
			}
		}
		if len(st.sessions) >= maxUIASessions && oldest != nil {
			delete(st.sessions, oldest.id)
		}
	}
	s := &uiaSession{id: auth.RandomString(24), op: op, user: user, expires: now.Add(uiaTTL)}
	st.sessions[s.id] = s
	return s
}

// get returns a live session. The copy it returns is the caller's; update
// stores changes back.
func (st *uiaStore) get(id string) (uiaSession, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.sessions[id]
	if !ok {
		return uiaSession{}, false
	}
	if st.now().After(s.expires) {
		delete(st.sessions, id)
		return uiaSession{}, false
	}
	return *s, true
}

func (st *uiaStore) update(s uiaSession) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.sessions[s.id]; !ok {
		return // completed or expired meanwhile
	}
	s.expires = st.now().Add(uiaTTL)
	st.sessions[s.id] = &s
}

func (st *uiaStore) remove(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.sessions, id)
}

// uiaOp describes an operation protected by user-interactive auth.
type uiaOp struct {
	name   string
	user   string // the authenticated caller, "" if the request had no token
	flows  []Flow
	params map[string]any
	// verify checks one stage's credentials; it may record what it learnt
	// (the user, the registration token) in sess.
	verify func(ctx context.Context, stage string, a *AuthDict, sess *uiaSession) error
}

// interactiveAuth runs one round of user-interactive authentication. It
// returns the session when a flow is complete (the caller performs the
// operation, then calls s.uia.remove), or an *AuthRequired, or another
// error for a request that is wrong regardless of authentication.
func (s *Service) interactiveAuth(ctx context.Context, op uiaOp, a *AuthDict) (uiaSession, error) {
	challenge := func(sess uiaSession, failed *mxerr.Error) error {
		return &AuthRequired{Flows: op.flows, Params: op.params, Session: sess.id, Completed: slices.Clone(sess.completed), Err: failed}
	}
	if a == nil {
		// Even a flow of m.login.dummy needs one round trip: the spec
		// requires a 401 to any request without auth data.
		return uiaSession{}, challenge(*s.uia.create(op.name, op.user), nil)
	}
	var sess uiaSession
	if a.Session == "" {
		sess = *s.uia.create(op.name, op.user)
	} else {
		var ok bool
		if sess, ok = s.uia.get(a.Session); !ok {
			return uiaSession{}, mxerr.New("M_UNKNOWN", "Unknown or expired session ID %q", a.Session).WithStatus(400)
		}
		if sess.op != op.name || (op.user != "" && sess.user != "" && sess.user != op.user) {
			return uiaSession{}, mxerr.Forbidden("Requested operation has changed during the user-interactive authentication session")
		}
	}
	if sess.user == "" {
		sess.user = op.user
	}
	if flowComplete(op.flows, sess.completed) {
		// Completed stages cannot be retried: a repeat of a finished
		// session performs the operation.
		return sess, nil
	}
	if a.Type != "" && !slices.Contains(sess.completed, a.Type) {
		next := append(slices.Clone(sess.completed), a.Type)
		if !flowPrefix(op.flows, next) {
			return uiaSession{}, challenge(sess, mxerr.New("M_UNRECOGNIZED", "Authentication stage %q is not expected here", a.Type))
		}
		if err := op.verify(ctx, a.Type, a, &sess); err != nil {
			var final refusal
			if errors.As(err, &final) {
				return uiaSession{}, final.err
			}
			e, ok := mxerr.As(err)
			if !ok {
				return uiaSession{}, err
			}
			s.uia.update(sess)
			return uiaSession{}, challenge(sess, e)
		}
		sess.completed = next
	}
	s.uia.update(sess)
	if flowComplete(op.flows, sess.completed) {
		return sess, nil
	}
	return uiaSession{}, challenge(sess, nil)
}

// refusal is a stage failure that another attempt cannot mend, such as
// credentials of another account than the caller's: it is answered with
// its own error (403) rather than a 401 inviting the client to retry.
type refusal struct{ err *mxerr.Error }

func (r refusal) Error() string { return r.err.Error() }

// flowPrefix reports whether done is the start of some flow.
func flowPrefix(flows []Flow, done []string) bool {
	for _, f := range flows {
		if len(done) <= len(f.Stages) && slices.Equal(f.Stages[:len(done)], done) {
			return true
		}
	}
	return false
}

func flowComplete(flows []Flow, done []string) bool {
	for _, f := range flows {
		if slices.Equal(f.Stages, done) {
			return true
		}
	}
	return false
}

// passwordOp is the operation description for endpoints protected by the
// account password. user is the caller ("" when the request carries no
// access token, in which case the password stage identifies the account).
func (s *Service) passwordOp(ctx context.Context, name, user string) (uiaOp, error) {
	if user != "" {
		u, err := s.db.GetUser(ctx, user)
		if err == nil && u.PasswordHash == "" {
			return uiaOp{}, mxerr.Forbidden("This account has no password to confirm the request with; an administrator can set one with `axon user reset-password`")
		}
	}
	return uiaOp{
		name:  name,
		user:  user,
		flows: []Flow{{Stages: []string{StagePassword}}},
		verify: func(ctx context.Context, stage string, a *AuthDict, sess *uiaSession) error {
			userID, err := s.identify(ctx, a.Identifier, a.User, "", "")
			if err != nil {
				return err
			}
			if sess.user != "" && userID != sess.user {
				return refusal{mxerr.Forbidden("The identifier does not match the account making the request")}
			}
			if _, err := s.verifyPassword(ctx, userID, a.Password); err != nil {
				return err
			}
			sess.user = userID
			return nil
		},
	}, nil
}

package account

import "context"

// ConfirmPassword runs one round of user-interactive authentication with
// the account password for an operation named op (another service's
// endpoint, such as cross-signing key upload). It returns nil once the
// password stage is complete, an *AuthRequired while it is not, or another
// error. finish must be called after the operation succeeded, to end the
// session.
func (s *Service) ConfirmPassword(ctx context.Context, userID, op string, a *AuthDict) (finish func(), err error) {
	uop, err := s.passwordOp(ctx, op, userID)
	if err != nil {
		return nil, err
	}
	sess, err := s.interactiveAuth(ctx, uop, a)
	if err != nil {
		return nil, err
	}
	return func() { s.uia.remove(sess.id) }, nil
}

func (s *Service) devicesChanged(ctx context.Context, userID string) {
	if s.OnDevicesDeleted != nil {
		s.OnDevicesDeleted(ctx, userID)
	}
}

package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// ChangePasswordRequest is the body of POST /account/password plus the
// caller. UserID and DeviceID are empty when the request carried no
// access token; the password stage then identifies the account.
type ChangePasswordRequest struct {
	UserID, DeviceID string
	NewPassword      *string
	LogoutDevices    *bool // default true
	Auth             *AuthDict
}

// ChangePassword replaces the account password after the old one has been
// confirmed, and by default logs out every other device.
func (s *Service) ChangePassword(ctx context.Context, req ChangePasswordRequest) error {
	if req.NewPassword == nil {
		return mxerr.MissingParam("Missing new_password")
	}
	if *req.NewPassword == "" {
		return mxerr.New("M_WEAK_PASSWORD", "The new password may not be empty")
	}
	if err := s.checkNewPassword(*req.NewPassword); err != nil {
		return err
	}
	op, err := s.passwordOp(ctx, "password", req.UserID)
	if err != nil {
		return err
	}
	if s.emailAuth() {
		// A forgotten password is reset by proving control of an email
		// address of the account (the stage identifies the account).
		op.flows = append(op.flows, Flow{Stages: []string{StageEmailIdentity}})
		checkPassword := op.verify
		op.verify = func(ctx context.Context, stage string, a *AuthDict, sess *uiaSession) error {
			if stage == StageEmailIdentity {
				return s.verifyEmailStage(ctx, a, PurposePassword, sess)
			}
			return checkPassword(ctx, stage, a, sess)
		}
	}
	sess, err := s.interactiveAuth(ctx, op, req.Auth)
	if err != nil {
		return err
	}
	logout := req.LogoutDevices == nil || *req.LogoutDevices
	// Without an access token there is no current device to keep.
	keep := req.DeviceID
	if req.UserID == "" {
		keep = ""
	}
	if err := s.setPassword(ctx, sess.user, *req.NewPassword, logout, keep); err != nil {
		return err
	}
	s.uia.remove(sess.id)
	s.threepidSessionUsed(ctx, sess)
	return nil
}

// ResetPassword sets a password without confirmation (for `axon user
// reset-password`) and logs out every device of the account, since a
// reset usually means the old password or a session was compromised.
func (s *Service) ResetPassword(ctx context.Context, userID, password string) error {
	if password == "" {
		return mxerr.New("M_WEAK_PASSWORD", "The new password may not be empty")
	}
	if err := s.checkNewPassword(password); err != nil {
		return err
	}
	u, err := s.db.GetUser(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return mxerr.NotFound("No such user %s", userID)
	}
	if err != nil {
		return fmt.Errorf("look up user: %w", err)
	}
	if u.Deactivated {
		return mxerr.New("M_USER_DEACTIVATED", "%s is deactivated", userID)
	}
	return s.setPassword(ctx, userID, password, true, "")
}

func (s *Service) setPassword(ctx context.Context, userID, password string, logout bool, keepDevice string) error {
	h, err := s.hasher.Hash(password)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	if err := s.db.SetPassword(ctx, userID, h); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	if logout {
		if err := s.db.DeleteDevices(ctx, userID, nil, keepDevice); err != nil {
			return fmt.Errorf("log out devices: %w", err)
		}
		s.devicesChanged(ctx, userID)
	}
	s.log.Info("password changed", "user", userID, "logged_out_devices", logout)
	return nil
}

// DeactivateRequest is the body of POST /account/deactivate plus the
// caller (empty when the request carried no access token).
type DeactivateRequest struct {
	UserID string
	Auth   *AuthDict
}

// Deactivate confirms the password and then deactivates the account.
func (s *Service) Deactivate(ctx context.Context, rm Rooms, req DeactivateRequest) error {
	op, err := s.passwordOp(ctx, "deactivate", req.UserID)
	if err != nil {
		return err
	}
	sess, err := s.interactiveAuth(ctx, op, req.Auth)
	if err != nil {
		return err
	}
	if err := s.DeactivateAccount(ctx, rm, sess.user); err != nil {
		return err
	}
	s.uia.remove(sess.id)
	return nil
}

// DeactivateAccount deactivates an account at once: it can no longer log
// in, its devices and tokens are gone, its profile is cleared and, when rm
// is not nil, it leaves every room it is in or invited to. The command
// line passes nil (it must not write room events beside a running
// server); LeaveRoomsOfDeactivated finishes the job at the next start.
func (s *Service) DeactivateAccount(ctx context.Context, rm Rooms, userID string) error {
	err := s.db.DeactivateUser(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return mxerr.NotFound("No such user %s", userID)
	}
	if err != nil {
		return fmt.Errorf("deactivate: %w", err)
	}
	s.log.Info("deactivated user", "user", userID)
	// The account is already unusable; what follows must finish even if
	// the client that asked goes away.
	ctx = context.WithoutCancel(ctx)
	if rm != nil {
		s.leaveAllRooms(ctx, rm, userID)
	}
	empty := ""
	if err := s.db.SetProfile(ctx, userID, &empty, &empty); err != nil {
		return fmt.Errorf("clear profile: %w", err)
	}
	return nil
}

// leaveAllRooms leaves joined rooms, rejects invites and withdraws knocks.
// Failures in one room are logged and do not stop the others.
func (s *Service) leaveAllRooms(ctx context.Context, rm Rooms, userID string) int {
	ms, err := s.db.UserMemberships(ctx, userID)
	if err != nil {
		s.log.Error("listing rooms of deactivated user", "user", userID, "err", err)
		return 0
	}
	left := 0
	for _, m := range ms {
		switch m.Membership {
		case "join", "invite", "knock":
		default:
			continue
		}
		if err := rm.Leave(ctx, m.RoomID, userID, ""); err != nil {
			s.log.Warn("leaving room of deactivated user", "user", userID, "room", m.RoomID, "err", err)
			continue
		}
		left++
	}
	return left
}

// LeaveRoomsOfDeactivated makes deactivated accounts that are still
// members of rooms (deactivated from the command line) leave them. The
// server calls it at start-up; it returns the number of rooms left.
func (s *Service) LeaveRoomsOfDeactivated(ctx context.Context, rm Rooms) (int, error) {
	users, err := s.db.ListUsers(ctx)
	if err != nil {
		return 0, fmt.Errorf("list users: %w", err)
	}
	total := 0
	for _, u := range users {
		if u.Deactivated {
			total += s.leaveAllRooms(ctx, rm, u.UserID)
		}
	}
	return total, nil
}

// Devices lists the user's devices.
func (s *Service) Devices(ctx context.Context, userID string) ([]storage.Device, error) {
	ds, err := s.db.ListDevices(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return ds, nil
}

// Device returns one of the user's devices, or M_NOT_FOUND.
func (s *Service) Device(ctx context.Context, userID, deviceID string) (*storage.Device, error) {
	ds, err := s.Devices(ctx, userID)
	if err != nil {
		return nil, err
	}
	for i := range ds {
		if ds[i].DeviceID == deviceID {
			return &ds[i], nil
		}
	}
	return nil, mxerr.NotFound("Unknown device")
}

// maxDeviceNameLen bounds device display names (Synapse uses 100).
const maxDeviceNameLen = 100

// RenameDevice sets a device's display name; nil leaves it unchanged but
// still reports M_NOT_FOUND for an unknown device.
func (s *Service) RenameDevice(ctx context.Context, userID, deviceID string, name *string) error {
	if name == nil {
		_, err := s.Device(ctx, userID, deviceID)
		return err
	}
	if len(*name) > maxDeviceNameLen {
		return mxerr.InvalidParam("Device display name may not be longer than %d bytes", maxDeviceNameLen)
	}
	err := s.db.SetDeviceName(ctx, userID, deviceID, *name)
	if errors.Is(err, storage.ErrNotFound) {
		return mxerr.NotFound("Unknown device")
	}
	if err != nil {
		return fmt.Errorf("rename device: %w", err)
	}
	return nil
}

// AppServicePutDevice creates a device for an application service's user,
// or renames it if it exists: the spec (1.17) lets services manage their
// users' devices without /login. The device has no access token; the
// service acts through it with its as_token and device_id.
func (s *Service) AppServicePutDevice(ctx context.Context, userID, deviceID string, name *string) error {
	if deviceID == "" {
		return mxerr.InvalidParam("Missing device ID")
	}
	if err := checkDeviceID(deviceID); err != nil {
		return err
	}
	display := ""
	if name != nil {
		if len(*name) > maxDeviceNameLen {
			return mxerr.InvalidParam("Device display name may not be longer than %d bytes", maxDeviceNameLen)
		}
		display = *name
	}
	created, err := s.db.CreateDeviceWithoutToken(ctx, userID, deviceID, display, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("create device: %w", err)
	}
	if created {
		return nil
	}
	return s.RenameDevice(ctx, userID, deviceID, name)
}

// AppServiceDeleteDevices removes devices of an application service's
// user; the spec (1.17) exempts services from user-interactive auth here.
func (s *Service) AppServiceDeleteDevices(ctx context.Context, userID string, deviceIDs []string) error {
	if len(deviceIDs) == 0 {
		return nil
	}
	if err := s.db.DeleteDevices(ctx, userID, deviceIDs, ""); err != nil {
		return fmt.Errorf("delete devices: %w", err)
	}
	s.devicesChanged(ctx, userID)
	return nil
}

// DeleteDevices removes devices after the password has been confirmed.
// Devices that do not exist are skipped: deleting is idempotent.
func (s *Service) DeleteDevices(ctx context.Context, userID string, deviceIDs []string, a *AuthDict) error {
	op, err := s.passwordOp(ctx, "delete_devices", userID)
	if err != nil {
		return err
	}
	sess, err := s.interactiveAuth(ctx, op, a)
	if err != nil {
		return err
	}
	if len(deviceIDs) > 0 {
		if err := s.db.DeleteDevices(ctx, userID, deviceIDs, ""); err != nil {
			return fmt.Errorf("delete devices: %w", err)
		}
		s.devicesChanged(ctx, userID)
	}
	s.uia.remove(sess.id)
	return nil
}

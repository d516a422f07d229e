"""Domain errors: each carries the text a person sees and the HTTP status of the page.

Views let them through to one handler (web/errors.py), or show them on the step's page; protocol errors are
Authlib ``OAuth2Error``s and never pass through here.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l


class DomainError(Exception):
    status = 400
    public = _l("Something went wrong. Please try again.")

    def __init__(self, public=None, **detail):
        super().__init__(str(public or self.public))
        if public is not None:
            self.public = public
        self.detail = detail

    def message(self) -> str:
        return str(self.public)

    def problems(self) -> list[str]:
        """What exactly is wrong, one item each, where the message alone does not say it."""
        return []

    def plain(self) -> str:
        """The message and its problems on one line (the command line)."""
        problems = self.problems()
        return self.message() + (" " + " ".join(problems) if problems else "")


class InvalidCredentials(DomainError):
    status = 401
    public = _l("The e-mail address or password is not correct.")


class InvalidEmail(DomainError):
    status = 400
    public = _l("Enter a valid e-mail address.")


class EmailMismatch(DomainError):
    status = 400
    public = _l("This is not the e-mail address of this sign-in. Enter the address you signed in with.")


class InvalidEmailCode(DomainError):
    status = 400
    public = _l("That code is not correct, or it has expired. Check the latest mail or request a new code.")


class TooManyAttempts(DomainError):
    status = 429
    public = _l("Too many attempts. Request a new code or start again.")

    def __init__(self, public=None, resets_in: int | None = None, **detail):
        super().__init__(public, **detail)
        self.resets_in = resets_in


class ResendTooSoon(DomainError):
    """A new code asked for too soon after the last one (``seconds``: how long until one may be sent)."""

    status = 429
    public = _l("A code was sent a moment ago. Wait a little before asking for another one.")

    def __init__(self, seconds: int | None = None, **detail):
        super().__init__(**detail)
        self.seconds = seconds

    def message(self) -> str:
        from flask_babel import ngettext

        if self.seconds is None:
            return str(self.public)
        if self.seconds <= 90:
            return ngettext("A code was sent a moment ago: use the code from the latest mail. "
                            "You can ask for a new code in %(num)d second.",
                            "A code was sent a moment ago: use the code from the latest mail. "
                            "You can ask for a new code in %(num)d seconds.", self.seconds)
        minutes = -(-self.seconds // 60)
        return ngettext("Several codes were sent in the last hour: use the code from the latest mail. "
                        "You can ask for a new code in %(num)d minute.",
                        "Several codes were sent in the last hour: use the code from the latest mail. "
                        "You can ask for a new code in %(num)d minutes.", minutes)


class InvalidTotp(DomainError):
    status = 400
    public = _l("That authenticator code is not correct. Enter the current 6-digit code from your app.")


class TotpAlreadyUsed(InvalidTotp):
    """A right code of a time step that was used already (every code works once)."""

    public = _l("This code has been used already. Wait for the next code in your app (a new one appears "
                "every 30 seconds) and enter that one.")


class PausedUntil(DomainError):
    """A refusal that lasts until ``until``: its text names that moment, %(until)s, in the
    person's time zone."""

    status = 423

    def __init__(self, until):
        super().__init__()
        self.until = until

    def message(self) -> str:
        from .timezones import shown

        return str(self.public) % {"until": shown(self.until)}


class AccountLocked(PausedUntil):
    """The account itself is locked (wrong authenticator codes after the right password);
    shown only to someone who gave the right password. ``until`` None: until support unlocks it."""

    public = _l("Signing in to this account is blocked after too many failed attempts, until %(until)s. "
                "Try again after that, or contact support.")
    until_support = _l("Signing in to this account is blocked until support unlocks it. Contact support.")

    def __init__(self, until=None):
        super().__init__(until)

    def message(self) -> str:
        return str(self.until_support) if self.until is None else super().message()


class SignInLocked(PausedUntil):
    """Too many wrong passwords from this browser or network for this address. The same
    answer whether or not the address has an account, and whether or not the password is right."""

    public = _l("Too many failed attempts. Signing in with this address from here is paused until "
                "%(until)s: try again after that. A device on which you signed in before is not affected.")


class CaptchaRequired(DomainError):
    """A source with several wrong passwords first proves it is not a robot, for every try."""

    status = 400
    public = _l("There were several failed attempts. Complete the check that you are not a robot, then sign in.")


class AccountDisabled(DomainError):
    status = 403
    public = _l("This account has been disabled. Contact support.")


class FlowExpired(DomainError):
    status = 410
    public = _l("This sign-in took too long and has expired. Please start again.")


class StepOutOfOrder(DomainError):
    status = 409
    public = _l("This step is not available now. Continue where you were.")


class FlowNotFound(DomainError):
    status = 404
    public = _l("This page is no longer valid. Please start again from the application.")


class InvitationUnusable(DomainError):
    """An invitation link that cannot be used (any more); says why and what to do."""

    status = 410
    MESSAGES = {
        "expired": _l("This invitation has expired. Ask the person who invited you to send a new invitation."),
        "revoked": _l("This invitation has been withdrawn. Ask the person who invited you if you should have received a new one."),
        "accepted": _l("This invitation has already been accepted. Sign in with your account instead."),
        # The address got an account (a sign-up elsewhere) while its invitee was still accepting.
        "account_exists": _l("An account with this e-mail address exists now. Sign in with it to accept the "
                             "invitation: open the link in the invitation mail again."),
        "unknown": _l("This invitation link is not valid. Check that you opened the complete link from the mail, or ask for a new invitation."),
    }

    def __init__(self, state: str):
        super().__init__(self.MESSAGES.get(state, self.MESSAGES["unknown"]))
        self.state = state
        self.status = {"unknown": 404, "account_exists": 409}.get(state, 410)


class InvitationNotResendable(InvitationUnusable):
    """Resend asked of an invitation that was accepted or withdrawn: said to the one who sends it."""

    MESSAGES = {
        **InvitationUnusable.MESSAGES,
        "accepted": _l("This invitation has been accepted already: there is nothing to send again."),
        "revoked": _l("This invitation has been withdrawn. Send a new invitation instead."),
    }

    def __init__(self, state: str):
        super().__init__(state)
        self.status = 409


class InvitationStillOpen(DomainError):
    """A second invitation to an address for the same administration while the first is open:
    ``invitation`` is the open one, which the page offers to send again."""

    status = 409
    public = _l("An invitation to this address for this administration is still open. Did the mail not arrive, "
                "or is the link lost? Send the invitation again: the person gets a new link.")

    def __init__(self, invitation):
        super().__init__(invitation=invitation.id)
        self.invitation = invitation

    def plain(self) -> str:
        return self.message() + " " + str(_l("On the command line: idp invitations resend %(id)s", id=self.invitation.id))


class NoOpenInvitation(DomainError):
    status = 404
    public = _l("There is no open invitation here any more: it has been accepted, withdrawn, or it has expired.")


class PasswordRejected(DomainError):
    """A new password the policy refuses: ``rules`` holds each rule of the live list and
    whether the password met it, ``problems`` says what is wrong, one sentence each."""

    status = 400
    public = _l("Choose another password.")

    def __init__(self, rules: dict[str, bool], problems: list):
        super().__init__()
        self.rules = rules
        self._problems = problems

    def problems(self) -> list[str]:
        return [str(problem) for problem in self._problems]


class WrongCurrentPassword(DomainError):
    """The current password asked before a change on the account page."""

    status = 401
    public = _l("Your current password is not correct. Enter the password you sign in with.")


class TermsNotAccepted(DomainError):
    status = 400
    public = _l("Accept the terms and the privacy statement to continue.")


class InvalidInput(DomainError):
    status = 400


class WrongAccount(DomainError):
    status = 409
    public = _l("You are signed in with another account than the one this invitation is for. Sign out first, then open the link again.")


class SessionNotFound(DomainError):
    """A session the person asked to end is not one of their running sessions (ended
    already, another person's, or unknown: the same answer)."""

    status = 404
    public = _l("This session has ended already. The list below shows the sessions that are still active.")


class AppNotFound(DomainError):
    """An app whose access the person withdraws has none (withdrawn already, or never granted)."""

    status = 404
    public = _l("This app has no access to your account (any more). The list below shows the apps that do.")


class InvalidName(DomainError):
    status = 400
    public = _l("Enter your name: at most 200 characters, without special characters.")


class SameEmail(DomainError):
    status = 400
    public = _l("This is already the e-mail address of your account. Enter the new address.")


class EmailInUse(DomainError):
    """Only shown after the person proved, with the mailed code, that they hold the address:
    no more than the invitation flow tells whoever opens a link mailed to it."""

    status = 409
    public = _l("This address belongs to another account. Sign in with that account, or choose another address.")
class UnknownAdministration(DomainError):
    """No such administration, or one the person is no member of: the same answer for both."""

    status = 404
    public = _l("This administration does not exist, or you have no access to it.")


class NotOwner(DomainError):
    status = 403
    public = _l("Only an owner of this administration manages who has access to it.")


class AlreadyHasAccess(DomainError):
    status = 409
    public = _l("This address has access to this administration already.")


class NoAccessToRemove(DomainError):
    status = 404
    public = _l("This address has no access to this administration.")


class LastOwner(DomainError):
    status = 409
    public = _l("An administration keeps at least one owner. Add another owner before you remove this one.")


class UnknownFirmCode(DomainError):
    """A firm code that no firm has (mistyped, made up, or the code of something else)."""

    status = 400
    public = _l("No accountancy firm has this code. Check the code with your accountant: it has 8 letters and digits.")


class FirmAlreadyLinked(DomainError):
    status = 409
    public = _l("This firm has access to this administration already.")


class NotAFirmAccountant(DomainError):
    status = 403
    public = _l("The firm portal is for the accountants of an accountancy firm.")


class PasskeyRefused(DomainError):
    """A passkey assertion that does not verify: an unknown passkey, a wrong signature, an
    expired or used challenge, another site's, no user verification, a cloned key. The same
    answer for each, so it tells nobody which passkeys exist."""

    status = 401
    public = _l("That passkey could not be used. Try again, or use another way to sign in.")


class PasskeySignInPaused(PausedUntil):
    """Too many failed passkey sign-ins from this network; signing in with a password still works."""

    public = _l("Too many failed attempts with a passkey from here. Signing in with a passkey is paused until "
                "%(until)s. You can still sign in with your e-mail address and password.")


class PasskeyNotAdded(DomainError):
    status = 400
    public = _l("The passkey could not be added. Try again, and confirm with your fingerprint, face or screen lock "
                "when your device asks.")


class NoPasskeyCreated(DomainError):
    status = 400
    public = _l("Your browser did not create a passkey. Use a browser or device that supports passkeys.")


class PasskeyExists(DomainError):
    status = 409
    public = _l("This passkey is registered already.")


class TooManyPasskeys(DomainError):
    status = 409

    def __init__(self, limit: int):
        super().__init__(_l("You have %(count)s passkeys, the most an account can have. Remove one before you add "
                            "another.", count=limit))


class PasskeyNotFound(DomainError):
    """A passkey the person asked to remove is not one of theirs (removed already, another
    person's, or unknown: the same answer)."""

    status = 404
    public = _l("This passkey does not exist (any more). The list below shows your passkeys.")


class LastSecondFactor(DomainError):
    status = 409
    public = _l("This is your last passkey and your account has no authenticator app, so it is your only second "
                "step when you sign in. Add another passkey before you remove this one.")


class InvalidPasskeyName(DomainError):
    status = 400
    public = _l("Give the passkey a name of at most 60 characters, without special characters.")


class PasskeyRequestExpired(FlowExpired):
    public = _l("Adding the passkey took too long. Press the button again to add it.")


class FreshSignInRequired(DomainError):
    """A change that needs the second factor, for an account whose second factor (a passkey)
    this page cannot ask for: a recent sign-in stands in for it."""

    status = 403

    def __init__(self, minutes: int):
        super().__init__(_l("For your security, sign out and sign in again with your passkey, then make this change "
                            "within %(minutes)s minutes.", minutes=minutes))

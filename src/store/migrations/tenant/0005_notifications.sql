-- Notices to a user about their own account (a recovery code used, factors
-- reset, a sign-in denied), shown in the account and, when SMTP is
-- configured and the user has an e-mail address, mailed: the row is the
-- outbox, written in the transaction of the event it tells about.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    read_at BIGINT,
    mail_state TEXT NOT NULL CHECK (mail_state IN ('pending', 'sent', 'failed', 'none')),
    mail_attempts INTEGER NOT NULL DEFAULT 0,
    mail_next_at BIGINT NOT NULL DEFAULT 0,
    mail_error TEXT
);
CREATE INDEX notifications_user ON notifications (user_id, created_at);
CREATE INDEX notifications_mail ON notifications (mail_state, mail_next_at);

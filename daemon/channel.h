/*  =========================================================================
    pole_channel - the ways a notification reaches a coordinator

    E-mail over SMTP and webhook over HTTP with libcurl, a local program
    with posix_spawn; and the bilingual text of a notice. Each call blocks
    for at most its configured timeout: the delivery worker calls them from
    its own thread, never the request loop. docs/NOTIFY.md is the contract.
    =========================================================================
*/
#ifndef POLE_CHANNEL_H_INCLUDED
#define POLE_CHANNEL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*  SMTP and timeout settings (notify.* in the configuration).            */
typedef struct {
    const char *smtp_url;       /* smtp://host:port or smtps://...        */
    const char *smtp_from;
    bool smtp_starttls;         /* require STARTTLS                        */
    const char *smtp_username;  /* "" or NULL: no authentication           */
    const char *smtp_password;
    int webhook_timeout_ms;
    int command_timeout_ms;
} pole_channel_settings_t;

/*  One notice, as the worker reads it from the outbox. Borrowed strings.  */
typedef struct {
    const char *id;             /* stable notification id, "SEQ-K"        */
    const char *coordinator;    /* coordinator's name                      */
    int64_t dossier;
    const char *pays;
    int departement;
    const char *holder;
    const char *title;          /* may be NULL                             */
    const char *event;
    const char *from;           /* NULL for open                           */
    const char *to;
    const char *actor;
    const char *at;             /* UTC, YYYY-MM-DDTHH:MM:SSZ               */
    const char *details;        /* the event's fields, "key=value ...";
                                   NULL or "" when it has none             */
    const char *json;           /* the notification as JSON (NOTIFY.md)    */
} pole_notice_t;

/*  The subject line: "[pole] ..." for one notice, or a digest of `count`
    notices. The string is the caller's.                                   */
char *pole_notice_subject (const pole_notice_t *notices, size_t count);

/*  The plain-text body, French then English: for each notice the dossier,
    the Pays, the transition, the actor, the time and what is expected next
    (the events the workflow table accepts in the state reached). The
    string is the caller's.                                                */
char *pole_notice_text (const pole_notice_t *notices, size_t count);

/*  Send one e-mail to `to`. Returns 0 once the SMTP server accepted it,
    -1 with the reason in `error`.                                         */
int pole_channel_email (const pole_channel_settings_t *settings,
                        const char *to, const char *notification_id,
                        const char *subject, const char *body, char *error,
                        size_t error_size);

/*  POST `json` to `url` with X-Pole-Notification-Id and X-Pole-Signature
    (sha256=HEX of HMAC-SHA256 over the body, key `secret`). 0 on a 2xx
    answer, -1 otherwise with the reason (status or curl error).           */
int pole_channel_webhook (const pole_channel_settings_t *settings,
                          const char *url, const char *secret,
                          const char *notification_id, const char *json,
                          char *error, size_t error_size);

/*  The signature header value for `body`: "sha256=" + 64 hex digits,
    written into `out` (at least 72 bytes).                                */
void pole_channel_signature (const char *secret, const char *body,
                             size_t body_size, char *out, size_t out_size);

/*  Run `program` (absolute path, no shell, no arguments) with the
    notice's POLE_* environment variables (NOTIFY.md) and POLE_PAYLOAD =
    `json`. 0 when it exits 0 within command_timeout_ms; -1 otherwise
    (killed on timeout) with the reason.                                   */
int pole_channel_command (const pole_channel_settings_t *settings,
                          const char *program, const pole_notice_t *notice,
                          const char *json, char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif

/*  =========================================================================
    pole_channel - the ways a notification reaches a coordinator

    Three channels and one text, as docs/NOTIFY.md describes them:

    * e-mail: libcurl SMTP. We build the whole RFC 5322 message (headers,
      a blank line, the body) with CRLF line endings, and hand it to curl
      through a read callback. curl does the SMTP dot-stuffing itself (it
      turns every "\r\n." of the upload into "\r\n.."), so the message is
      given as is and never stuffed here: doing it twice would show the
      reader doubled dots.
    * webhook: libcurl HTTP POST of the JSON, signed with HMAC-SHA256
      (libsodium) so that the receiver can tell the body came from poled
      and was not altered. Redirects are not followed: a 3xx is a failure
      that the operator should see, not a hop to somewhere else.
    * command: posix_spawn of an absolute path, no shell, no arguments, a
      minimal environment. posix_spawn, not fork + exec by hand, because
      poled is multi-threaded: between fork and exec only async-signal-
      safe calls are allowed, and glibc's posix_spawn (clone + exec, no
      copy of the address space) gets that right for us.

    Every call blocks for at most its timeout; the delivery worker calls
    them from its own thread. curl handles are made per call with
    CURLOPT_NOSIGNAL, which is what libcurl asks of threaded programs;
    curl_global_init is the daemon's business, once, at start.

    The text is plain UTF-8, French first, then English, and never cut:
    user text (titles, holders) goes into a growing buffer whatever its
    length.
    =========================================================================
*/

#ifndef _GNU_SOURCE
#define _GNU_SOURCE     //  posix_spawn_file_actions_addclosefrom_np
#endif

#include "channel.h"

#include "pole/workflow.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

//  Whole-transfer timeout for SMTP when no webhook timeout is configured
#define S_SMTP_DEFAULT_TIMEOUT_MS 30000

//  RFC 5322 allows 998 octets per line; we break longer body lines a bit
//  earlier, at a UTF-8 character boundary
#define S_MAX_LINE 990

//  --------------------------------------------------------------------------
//  A growing string buffer. On allocation failure it remembers the fact
//  and s_buf_take returns NULL, so that callers check once, at the end.

typedef struct {
    char *data;
    size_t size;        //  bytes used, without the final NUL
    size_t alloc;
    bool failed;
} s_buf_t;

static void
s_buf_reserve (s_buf_t *self, size_t extra)
{
    if (self->failed)
        return;
    if (self->size + extra + 1 <= self->alloc)
        return;
    size_t alloc = self->alloc ? self->alloc : 256;
    while (alloc < self->size + extra + 1)
        alloc *= 2;
    char *data = (char *) realloc (self->data, alloc);
    if (!data) {
        self->failed = true;
        return;
    }
    self->data = data;
    self->alloc = alloc;
}

static void
s_buf_append (s_buf_t *self, const char *data, size_t size)
{
    s_buf_reserve (self, size);
    if (self->failed)
        return;
    memcpy (self->data + self->size, data, size);
    self->size += size;
    self->data [self->size] = 0;
}

static void
s_buf_puts (s_buf_t *self, const char *string)
{
    s_buf_append (self, string, strlen (string));
}

static void
s_buf_printf (s_buf_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    va_list copy;
    va_copy (copy, args);
    int needed = vsnprintf (NULL, 0, format, copy);
    va_end (copy);
    if (needed < 0)
        self->failed = true;
    else {
        s_buf_reserve (self, (size_t) needed);
        if (!self->failed) {
            vsnprintf (self->data + self->size, (size_t) needed + 1, format, args);
            self->size += (size_t) needed;
        }
    }
    va_end (args);
}

//  Hands the string over to the caller; NULL if anything failed on the way
static char *
s_buf_take (s_buf_t *self)
{
    if (self->failed || !self->data) {
        free (self->data);
        if (self->failed)
            return NULL;
        return strdup ("");
    }
    char *data = self->data;
    self->data = NULL;
    return data;
}

//  Writes a reason into the caller's error buffer, if there is one
static void
s_error (char *error, size_t error_size, const char *format, ...)
{
    if (!error || error_size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (error, error_size, format, args);
    va_end (args);
}

static const char *
s_or (const char *string, const char *fallback)
{
    return string && *string ? string : fallback;
}

//  A header value must be one line: a CR or LF in it would let the value
//  add headers of its own (header injection)
static bool
s_is_one_line (const char *string)
{
    return string && !strpbrk (string, "\r\n");
}

//  --------------------------------------------------------------------------
//  The text of a notice

//  What the workflow table accepts in `state`, apart from the events that
//  are always possible there (note, add_cofunding) and, in terminal states,
//  the reopen that only corrects a mistake. Comma-separated into `buf`;
//  nothing is appended when the list is empty (returns false then).
static bool
s_expected_next (s_buf_t *buf, int state)
{
    size_t count;
    const pole_transition_t *table = pole_workflow_transitions (&count);
    bool seen [POLE_E_COUNT] = { false };
    bool any = false;
    for (size_t index = 0; index < count; index++) {
        const pole_transition_t *row = &table [index];
        if ((int) row->from != state)
            continue;
        if (!pole_workflow_is_expected_next (row->event))
            continue;
        //  start_next_year has two rows (guards); name it once
        if (seen [row->event])
            continue;
        seen [row->event] = true;
        const char *name = pole_event_name (row->event);
        s_buf_printf (buf, "%s%s", any ? ", " : "", name ? name : "?");
        any = true;
    }
    return any;
}

//  The "what next" line, in French or in English
static void
s_next_line (s_buf_t *buf, const pole_notice_t *notice, bool french)
{
    s_buf_puts (buf, french ? "Suite attendue : " : "Expected next: ");
    int state = pole_state_from_name (notice->to);
    if (state < 0)
        s_buf_puts (buf, french ? "inconnue (état inconnu)" : "unknown (unknown state)");
    else
    if (pole_state_is_terminal ((pole_state_t) state))
        s_buf_puts (buf, french
            ? "aucune (état final ; seule une correction par reopen le rouvrirait)"
            : "none (final state; only a correction by reopen would reopen it)");
    else
    if (!s_expected_next (buf, state))
        s_buf_puts (buf, french ? "aucune" : "none");
    s_buf_puts (buf, "\n");
}

//  One notice, in one language. `number` is its rank in a digest, or 0.
static void
s_notice_block (s_buf_t *buf, const pole_notice_t *notice, size_t number,
                bool french)
{
    const char *title = s_or (notice->title, french ? "(sans titre)" : "(untitled)");
    if (number)
        s_buf_printf (buf, "%zu. ", number);
    //  French puts a space before the colon, English does not
    s_buf_printf (buf, french ? "Dossier %lld : %s\n" : "Dossier %lld: %s\n",
                  (long long) notice->dossier, title);
    const char *indent = number ? "   " : "";
    if (notice->departement > 0)
        s_buf_printf (buf, "%sPays%s %s (département %d)\n", indent,
                      french ? " :" : ":", s_or (notice->pays, "?"),
                      notice->departement);
    else
        s_buf_printf (buf, "%sPays%s %s\n", indent, french ? " :" : ":",
                      s_or (notice->pays, "?"));
    s_buf_printf (buf, "%s%s %s\n", indent, french ? "Porteur :" : "Holder:",
                  s_or (notice->holder, "?"));
    const char *event = s_or (notice->event, "?");
    const char *to = s_or (notice->to, "?");
    if (!notice->from || !*notice->from)
        s_buf_printf (buf, french
                      ? "%sTransition : ouverture → %s (événement %s)\n"
                      : "%sTransition: opened → %s (event %s)\n",
                      indent, to, event);
    else
        s_buf_printf (buf, french
                      ? "%sTransition : %s → %s par l'événement %s\n"
                      : "%sTransition: %s → %s by event %s\n",
                      indent, notice->from, to, event);
    s_buf_printf (buf, "%s%s %s\n", indent, french ? "Acteur :" : "Actor:",
                  s_or (notice->actor, "?"));
    s_buf_printf (buf, "%s%s %s (UTC)\n", indent, french ? "Date :" : "Time:",
                  s_or (notice->at, "?"));
    //  What the event says: the amount granted, the report's year, what a
    //  reminder is about and when it is due
    if (notice->details && *notice->details)
        s_buf_printf (buf, "%s%s %s\n", indent,
                      french ? "Détails :" : "Details:", notice->details);
    s_buf_puts (buf, indent);
    s_next_line (buf, notice, french);
    s_buf_printf (buf, "%s%s %s\n", indent,
                  french ? "Notification :" : "Notification:",
                  s_or (notice->id, "?"));
}

char *
pole_notice_subject (const pole_notice_t *notices, size_t count)
{
    s_buf_t buf = { 0 };
    if (count == 1) {
        const pole_notice_t *notice = &notices [0];
        s_buf_printf (&buf, "[pole] %s, dossier %lld : %s → %s (%s)",
                      s_or (notice->pays, "?"), (long long) notice->dossier,
                      s_or (notice->from, "ouverture/opened"),
                      s_or (notice->to, "?"), s_or (notice->event, "?"));
    }
    else
        s_buf_printf (&buf, "[pole] Résumé / Digest : %zu notifications", count);
    char *subject = s_buf_take (&buf);
    //  A subject is one line whatever the user typed in a Pays name
    for (char *scan = subject; scan && *scan; scan++)
        if (*scan == '\r' || *scan == '\n')
            *scan = ' ';
    return subject;
}

char *
pole_notice_text (const pole_notice_t *notices, size_t count)
{
    s_buf_t buf = { 0 };
    const char *coordinator = count ? s_or (notices [0].coordinator, "?") : "?";
    for (int pass = 0; pass < 2; pass++) {
        bool french = pass == 0;
        if (!french)
            s_buf_puts (&buf, "\n— English —\n\n");
        if (count == 1)
            s_buf_printf (&buf, french
                          ? "Notification pole pour %s\n\n"
                          : "pole notification for %s\n\n", coordinator);
        else
            s_buf_printf (&buf, french
                          ? "Résumé de %zu notifications pole pour %s\n\n"
                          : "Digest of %zu pole notifications for %s\n\n",
                          count, coordinator);
        for (size_t index = 0; index < count; index++) {
            if (index)
                s_buf_puts (&buf, "\n");
            s_notice_block (&buf, &notices [index], count == 1 ? 0 : index + 1,
                            french);
        }
    }
    return s_buf_take (&buf);
}

//  --------------------------------------------------------------------------
//  E-mail

//  A notification id goes into Message-ID and a header: we accept only the
//  characters of an RFC 5322 dot-atom, which also keeps CR and LF out
static bool
s_valid_id (const char *id)
{
    if (!id || !*id)
        return false;
    for (const char *scan = id; *scan; scan++) {
        unsigned char c = (unsigned char) *scan;
        if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z')
        &&  !(c >= '0' && c <= '9') && !strchr ("!#$%&'*+-/=?^_`{|}~.", c))
            return false;
    }
    return true;
}

//  The address of "Name <addr>" or of "addr": what SMTP's MAIL FROM and
//  RCPT TO want, while the header keeps the form as configured.
static char *
s_bare_address (const char *address)
{
    const char *open = strchr (address, '<');
    const char *close = open ? strchr (open, '>') : NULL;
    if (open && close)
        return strndup (open + 1, (size_t) (close - open - 1));
    //  Trim blanks around a plain address
    while (*address == ' ' || *address == '\t')
        address++;
    size_t length = strlen (address);
    while (length && (address [length - 1] == ' ' || address [length - 1] == '\t'))
        length--;
    return strndup (address, length);
}

//  Length of the longest prefix of `text` (of `size` bytes) not longer than
//  `limit` that does not end inside a UTF-8 character
static size_t
s_utf8_cut (const char *text, size_t size, size_t limit)
{
    if (size <= limit)
        return size;
    size_t cut = limit;
    //  Step back while the next byte continues a character (10xxxxxx)
    while (cut > 0 && ((unsigned char) text [cut] & 0xC0) == 0x80)
        cut--;
    return cut ? cut : limit;   //  not UTF-8 at all: cut anywhere
}

//  The Subject value: as is when it is printable ASCII, else RFC 2047
//  encoded-words of at most 75 characters each, folded onto lines of their
//  own (the white space between two encoded-words is not displayed)
static void
s_subject_header (s_buf_t *buf, const char *subject)
{
    bool ascii = true;
    for (const char *scan = subject; *scan; scan++)
        if ((unsigned char) *scan < 0x20 || (unsigned char) *scan > 0x7E)
            ascii = false;
    s_buf_puts (buf, "Subject: ");
    if (ascii) {
        s_buf_puts (buf, subject);
        s_buf_puts (buf, "\r\n");
        return;
    }
    //  45 bytes give 60 base64 characters: 72 with "=?UTF-8?B?" and "?="
    size_t size = strlen (subject);
    size_t offset = 0;
    bool first = true;
    while (offset < size) {
        size_t chunk = s_utf8_cut (subject + offset, size - offset, 45);
        char encoded [sodium_base64_ENCODED_LEN (45, sodium_base64_VARIANT_ORIGINAL)];
        sodium_bin2base64 (encoded, sizeof encoded,
                           (const unsigned char *) subject + offset, chunk,
                           sodium_base64_VARIANT_ORIGINAL);
        s_buf_printf (buf, "%s=?UTF-8?B?%s?=", first ? "" : "\r\n ", encoded);
        first = false;
        offset += chunk;
    }
    s_buf_puts (buf, "\r\n");
}

//  The Date value of RFC 5322, in UTC, with English names whatever the
//  locale is
static void
s_date_header (s_buf_t *buf)
{
    static const char *days [] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *months [] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t now = time (NULL);
    struct tm tm;
    gmtime_r (&now, &tm);
    s_buf_printf (buf, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
                  days [tm.tm_wday], tm.tm_mday, months [tm.tm_mon],
                  tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

//  The body with CRLF after every line (whatever ended it in `body`) and
//  no line longer than SMTP allows. Dots are left to curl.
static void
s_body_crlf (s_buf_t *buf, const char *body)
{
    const char *scan = body;
    while (*scan) {
        size_t length = strcspn (scan, "\r\n");
        const char *line = scan;
        do {
            size_t chunk = s_utf8_cut (line, length, S_MAX_LINE);
            s_buf_append (buf, line, chunk);
            s_buf_puts (buf, "\r\n");
            line += chunk;
            length -= chunk;
        } while (length);
        scan = line;
        if (scan [0] == '\r' && scan [1] == '\n')
            scan += 2;
        else
        if (scan [0] == '\r' || scan [0] == '\n')
            scan++;
    }
}

//  What the read callback hands to curl, piece by piece
typedef struct {
    const char *data;
    size_t size;
    size_t offset;
} s_upload_t;

static size_t
s_upload_read (char *buffer, size_t size, size_t nitems, void *arg)
{
    s_upload_t *upload = (s_upload_t *) arg;
    size_t room = size * nitems;
    size_t left = upload->size - upload->offset;
    size_t count = left < room ? left : room;
    memcpy (buffer, upload->data + upload->offset, count);
    upload->offset += count;
    return count;   //  0 tells curl the message is complete
}

//  The reason of a failed transfer: curl's detailed message when it wrote
//  one (it says which SMTP command was refused), else the generic one
static void
s_curl_error (char *error, size_t error_size, CURLcode code, const char *detail)
{
    if (detail && *detail)
        s_error (error, error_size, "%s: %s", curl_easy_strerror (code), detail);
    else
        s_error (error, error_size, "%s", curl_easy_strerror (code));
}

int
pole_channel_email (const pole_channel_settings_t *settings,
                    const char *to, const char *notification_id,
                    const char *subject, const char *body, char *error,
                    size_t error_size)
{
    if (!settings || !settings->smtp_url || !*settings->smtp_url) {
        s_error (error, error_size, "no SMTP URL configured");
        return -1;
    }
    if (!s_is_one_line (settings->smtp_from) || !*settings->smtp_from) {
        s_error (error, error_size, "invalid sender address");
        return -1;
    }
    if (!s_is_one_line (to) || !*to) {
        s_error (error, error_size, "invalid recipient address");
        return -1;
    }
    if (!s_valid_id (notification_id)) {
        s_error (error, error_size, "invalid notification id");
        return -1;
    }
    if (!subject)
        subject = "[pole]";
    if (!body)
        body = "";

    //  The subject is one line even if a caller forgot it
    char *one_line = strdup (subject);
    if (!one_line) {
        s_error (error, error_size, "out of memory");
        return -1;
    }
    for (char *scan = one_line; *scan; scan++)
        if (*scan == '\r' || *scan == '\n')
            *scan = ' ';

    s_buf_t message = { 0 };
    s_date_header (&message);
    s_buf_printf (&message, "From: %s\r\n", settings->smtp_from);
    s_buf_printf (&message, "To: %s\r\n", to);
    s_subject_header (&message, one_line);
    s_buf_printf (&message, "Message-ID: <%s@pole>\r\n", notification_id);
    s_buf_printf (&message, "X-Pole-Notification-Id: %s\r\n", notification_id);
    s_buf_puts (&message, "MIME-Version: 1.0\r\n");
    s_buf_puts (&message, "Content-Type: text/plain; charset=UTF-8\r\n");
    s_buf_puts (&message, "Content-Transfer-Encoding: 8bit\r\n");
    s_buf_puts (&message, "\r\n");
    s_body_crlf (&message, body);
    free (one_line);
    char *text = s_buf_take (&message);

    char *from_address = s_bare_address (settings->smtp_from);
    char *to_address = s_bare_address (to);
    char *mail_from = NULL, *rcpt_to = NULL;
    if (from_address && to_address) {
        mail_from = (char *) malloc (strlen (from_address) + 3);
        rcpt_to = (char *) malloc (strlen (to_address) + 3);
        if (mail_from)
            sprintf (mail_from, "<%s>", from_address);
        if (rcpt_to)
            sprintf (rcpt_to, "<%s>", to_address);
    }
    struct curl_slist *recipients = rcpt_to ? curl_slist_append (NULL, rcpt_to) : NULL;
    CURL *curl = curl_easy_init ();

    int rc = -1;
    if (!text || !mail_from || !recipients || !curl)
        s_error (error, error_size, "out of memory");
    else {
        s_upload_t upload = { text, strlen (text), 0 };
        char detail [CURL_ERROR_SIZE] = "";
        long connect_ms = settings->webhook_timeout_ms > 0
                        ? settings->webhook_timeout_ms : S_SMTP_DEFAULT_TIMEOUT_MS;
        long total_ms = settings->webhook_timeout_ms > 0
                      ? 4L * settings->webhook_timeout_ms : S_SMTP_DEFAULT_TIMEOUT_MS;
        curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, detail);
        curl_easy_setopt (curl, CURLOPT_URL, settings->smtp_url);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#else
        curl_easy_setopt (curl, CURLOPT_PROTOCOLS,
                          (long) (CURLPROTO_SMTP | CURLPROTO_SMTPS));
#endif
        curl_easy_setopt (curl, CURLOPT_MAIL_FROM, mail_from);
        curl_easy_setopt (curl, CURLOPT_MAIL_RCPT, recipients);
        curl_easy_setopt (curl, CURLOPT_READFUNCTION, s_upload_read);
        curl_easy_setopt (curl, CURLOPT_READDATA, &upload);
        curl_easy_setopt (curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
        curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, total_ms);
        if (settings->smtp_starttls)
            curl_easy_setopt (curl, CURLOPT_USE_SSL, (long) CURLUSESSL_ALL);
        if (settings->smtp_username && *settings->smtp_username) {
            curl_easy_setopt (curl, CURLOPT_USERNAME, settings->smtp_username);
            curl_easy_setopt (curl, CURLOPT_PASSWORD,
                              settings->smtp_password ? settings->smtp_password : "");
        }
        CURLcode code = curl_easy_perform (curl);
        if (code == CURLE_OK)
            rc = 0;
        else
            s_curl_error (error, error_size, code, detail);
    }
    if (curl)
        curl_easy_cleanup (curl);
    curl_slist_free_all (recipients);
    free (rcpt_to);
    free (mail_from);
    free (to_address);
    free (from_address);
    free (text);
    return rc;
}

//  --------------------------------------------------------------------------
//  Webhook

//  Default webhook timeout when the settings give none
#define S_WEBHOOK_DEFAULT_TIMEOUT_MS 5000

//  The answer's body is not ours to read: swallow it
static size_t
s_discard (char *data, size_t size, size_t nitems, void *arg)
{
    (void) data;
    (void) arg;
    return size * nitems;
}

void
pole_channel_signature (const char *secret, const char *body,
                        size_t body_size, char *out, size_t out_size)
{
    static const char prefix [] = "sha256=";
    if (!out || out_size == 0)
        return;
    out [0] = 0;
    if (out_size < sizeof prefix - 1 + crypto_auth_hmacsha256_BYTES * 2 + 1)
        return;
    //  Safe to call again and from any thread: it returns 1 once done
    if (sodium_init () < 0)
        return;
    if (!secret)
        secret = "";
    if (!body)
        body_size = 0;

    //  The state API takes a key of any length (RFC 2104 hashes a long one)
    crypto_auth_hmacsha256_state state;
    unsigned char mac [crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init (&state, (const unsigned char *) secret,
                                 strlen (secret));
    crypto_auth_hmacsha256_update (&state, (const unsigned char *) body,
                                   body_size);
    crypto_auth_hmacsha256_final (&state, mac);
    sodium_memzero (&state, sizeof state);

    memcpy (out, prefix, sizeof prefix - 1);
    sodium_bin2hex (out + sizeof prefix - 1, out_size - (sizeof prefix - 1),
                    mac, sizeof mac);
}

int
pole_channel_webhook (const pole_channel_settings_t *settings,
                      const char *url, const char *secret,
                      const char *notification_id, const char *json,
                      char *error, size_t error_size)
{
    if (!url || (strncasecmp (url, "http://", 7) != 0
              && strncasecmp (url, "https://", 8) != 0)) {
        s_error (error, error_size, "not an http:// or https:// URL");
        return -1;
    }
    if (!secret || !*secret) {
        s_error (error, error_size, "no webhook secret");
        return -1;
    }
    if (!s_valid_id (notification_id)) {
        s_error (error, error_size, "invalid notification id");
        return -1;
    }
    if (!json)
        json = "";
    size_t json_size = strlen (json);

    char signature [80];
    pole_channel_signature (secret, json, json_size, signature, sizeof signature);
    char id_header [256 + 32];
    char signature_header [sizeof signature + 32];
    if (strlen (notification_id) > 256) {
        s_error (error, error_size, "invalid notification id");
        return -1;
    }
    snprintf (id_header, sizeof id_header, "X-Pole-Notification-Id: %s",
              notification_id);
    snprintf (signature_header, sizeof signature_header,
              "X-Pole-Signature: %s", signature);

    struct curl_slist *headers = NULL, *next;
    const char *lines [] = {
        "Content-Type: application/json",
        id_header,
        signature_header,
        //  No "Expect: 100-continue" wait on larger bodies
        "Expect:",
    };
    bool ok = true;
    for (size_t index = 0; ok && index < sizeof lines / sizeof lines [0]; index++) {
        next = curl_slist_append (headers, lines [index]);
        if (next)
            headers = next;
        else
            ok = false;
    }
    CURL *curl = ok ? curl_easy_init () : NULL;
    int rc = -1;
    if (!curl)
        s_error (error, error_size, "out of memory");
    else {
        char detail [CURL_ERROR_SIZE] = "";
        long timeout_ms = settings && settings->webhook_timeout_ms > 0
                        ? settings->webhook_timeout_ms
                        : S_WEBHOOK_DEFAULT_TIMEOUT_MS;
        curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, detail);
        curl_easy_setopt (curl, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt (curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt (curl, CURLOPT_PROTOCOLS,
                          (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
        curl_easy_setopt (curl, CURLOPT_REDIR_PROTOCOLS,
                          (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt (curl, CURLOPT_POST, 1L);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, json);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) json_size);
        curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt (curl, CURLOPT_USERAGENT, "poled");
        curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_discard);
        curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
        curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, timeout_ms);
        CURLcode code = curl_easy_perform (curl);
        if (code != CURLE_OK)
            s_curl_error (error, error_size, code, detail);
        else {
            long status = 0;
            curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
            if (status >= 200 && status < 300)
                rc = 0;
            else
                s_error (error, error_size, "HTTP %ld", status);
        }
        curl_easy_cleanup (curl);
    }
    curl_slist_free_all (headers);
    return rc;
}

//  --------------------------------------------------------------------------
//  Command

//  Default command timeout when the settings give none
#define S_COMMAND_DEFAULT_TIMEOUT_MS 10000

//  How often we look whether the program is done
#define S_COMMAND_POLL_MS 10

static int64_t
s_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int
pole_channel_command (const pole_channel_settings_t *settings,
                      const char *program, const pole_notice_t *notice,
                      const char *json, char *error, size_t error_size)
{
    if (!program || program [0] != '/') {
        s_error (error, error_size, "not an absolute path: %s", program ? program : "(none)");
        return -1;
    }
    if (!notice) {
        s_error (error, error_size, "no notice");
        return -1;
    }
    //  posix_spawn reports a failed exec itself on glibc, but elsewhere (and
    //  under valgrind) it only shows as exit status 127: say why up front
    if (access (program, X_OK) != 0) {
        s_error (error, error_size, "cannot run %s: %s", program, strerror (errno));
        return -1;
    }
    int timeout_ms = settings && settings->command_timeout_ms > 0
                   ? settings->command_timeout_ms : S_COMMAND_DEFAULT_TIMEOUT_MS;

    //  The program sees only what we give it: nothing of poled's own
    //  environment leaks (no secrets, no LD_PRELOAD)
    const char *names [] = {
        "POLE_NOTIFICATION_ID", "POLE_COORDINATOR", "POLE_DOSSIER", "POLE_PAYS",
        "POLE_EVENT", "POLE_FROM", "POLE_TO", "POLE_ACTOR", "POLE_AT",
        "POLE_PAYLOAD"
    };
    char dossier [32];
    snprintf (dossier, sizeof dossier, "%lld", (long long) notice->dossier);
    const char *values [] = {
        notice->id, notice->coordinator, dossier, notice->pays,
        notice->event, notice->from, notice->to, notice->actor, notice->at,
        json
    };
#define S_ENV_COUNT (sizeof names / sizeof names [0])
    char *envp [S_ENV_COUNT + 2] = { NULL };
    bool ok = true;
    envp [0] = strdup ("PATH=/usr/bin:/bin");
    ok = envp [0] != NULL;
    for (size_t index = 0; ok && index < S_ENV_COUNT; index++) {
        const char *value = values [index] ? values [index] : "";
        size_t size = strlen (names [index]) + 1 + strlen (value) + 1;
        envp [index + 1] = (char *) malloc (size);
        if (envp [index + 1])
            snprintf (envp [index + 1], size, "%s=%s", names [index], value);
        else
            ok = false;
    }
    if (!ok) {
        for (size_t index = 0; index < S_ENV_COUNT + 1; index++)
            free (envp [index]);
        s_error (error, error_size, "out of memory");
        return -1;
    }

    //  stdin and stdout on /dev/null: the program has nothing to read and
    //  nobody reads what it prints; stderr goes to poled's log. Every other
    //  descriptor of poled (database, sockets) is closed in the child.
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_addopen (&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen (&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
#if defined (__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    posix_spawn_file_actions_addclosefrom_np (&actions, STDERR_FILENO + 1);
#endif

    //  Its own process group, so that a timeout kills what it started too;
    //  default signal dispositions and an empty mask, whatever the calling
    //  thread blocks or ignores (an ignored SIGPIPE would survive exec)
    posix_spawnattr_t attr;
    posix_spawnattr_init (&attr);
    sigset_t mask, defaults;
    sigemptyset (&mask);
    sigemptyset (&defaults);
    int reset [] = { SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD,
                     SIGUSR1, SIGUSR2, SIGALRM };
    for (size_t index = 0; index < sizeof reset / sizeof reset [0]; index++)
        sigaddset (&defaults, reset [index]);
    posix_spawnattr_setsigmask (&attr, &mask);
    posix_spawnattr_setsigdefault (&attr, &defaults);
    posix_spawnattr_setpgroup (&attr, 0);
    posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK
                                   | POSIX_SPAWN_SETSIGDEF);

    char *argv [] = { (char *) program, NULL };
    pid_t pid;
    int spawn_rc = posix_spawn (&pid, program, &actions, &attr, argv, envp);
    posix_spawnattr_destroy (&attr);
    posix_spawn_file_actions_destroy (&actions);
    for (size_t index = 0; index < S_ENV_COUNT + 1; index++)
        free (envp [index]);
    if (spawn_rc != 0) {
        s_error (error, error_size, "cannot run %s: %s", program, strerror (spawn_rc));
        return -1;
    }

    //  Poll rather than block: a blocking waitpid cannot time out, and a
    //  SIGALRM would reach any thread of poled
    int64_t deadline = s_now_ms () + timeout_ms;
    int status = 0;
    while (true) {
        pid_t done = waitpid (pid, &status, WNOHANG);
        if (done == pid)
            break;
        if (done < 0 && errno != EINTR) {
            s_error (error, error_size, "waitpid: %s", strerror (errno));
            kill (-pid, SIGKILL);
            return -1;
        }
        if (s_now_ms () >= deadline) {
            kill (-pid, SIGKILL);
            kill (pid, SIGKILL);    //  in case it left its group
            while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
                ;
            s_error (error, error_size, "timed out after %d ms", timeout_ms);
            return -1;
        }
        struct timespec pause = { 0, S_COMMAND_POLL_MS * 1000000L };
        nanosleep (&pause, NULL);
    }
    if (WIFEXITED (status)) {
        if (WEXITSTATUS (status) == 0)
            return 0;
        s_error (error, error_size, "exit status %d", WEXITSTATUS (status));
        return -1;
    }
    if (WIFSIGNALED (status)) {
        s_error (error, error_size, "killed by signal %d", WTERMSIG (status));
        return -1;
    }
    s_error (error, error_size, "ended abnormally (status %d)", status);
    return -1;
}

/*  Channel tests: the bilingual text of a notice, the webhook signature
    against RFC 4231, and each channel against something real on this
    machine: shell scripts for the command channel, a Python http.server
    for the webhook and an aiosmtpd server for e-mail, all on 127.0.0.1,
    started by the group setup and killed by the group teardown. Every wait
    is bounded.                                                            */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"

#define PYTHON "/usr/bin/python3"

//  How long a server may take to start, and how often we look
#define S_START_TIMEOUT_MS 15000
#define S_POLL_MS 20

//  The servers of the group, and the directory they write into
typedef struct {
    char dir [256];
    pid_t http_pid;
    int http_port;
    pid_t smtp_pid;
    int smtp_port;
} group_t;

//  A Python HTTP server on an ephemeral port of 127.0.0.1. It writes the
//  port into DIR/http.port once it listens, and each request into
//  DIR/req-ID (ID: the X-Pole-Notification-Id header): path, headers, a
//  blank line, the body. /ok answers 200, /redirect 302 to /ok, /slow
//  waits 3 s, anything else 500.
static const char *s_http_server =
    "import http.server, os, sys, time\n"
    "d = sys.argv[1]\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_POST(self):\n"
    "        body = self.rfile.read(int(self.headers.get('Content-Length', '0')))\n"
    "        if self.path == '/slow':\n"
    "            time.sleep(3)\n"
    "        name = os.path.join(d, 'req-' + self.headers.get('X-Pole-Notification-Id', 'none'))\n"
    "        with open(name + '.tmp', 'wb') as f:\n"
    "            f.write(self.path.encode() + b'\\n')\n"
    "            for k, v in self.headers.items():\n"
    "                f.write(('%s: %s\\n' % (k, v)).encode())\n"
    "            f.write(b'\\n' + body)\n"
    "        os.rename(name + '.tmp', name)\n"
    "        code = {'/ok': 200, '/redirect': 302}.get(self.path, 500)\n"
    "        self.send_response(code)\n"
    "        if code == 302:\n"
    "            self.send_header('Location', '/ok')\n"
    "        self.send_header('Content-Length', '5')\n"
    "        self.end_headers()\n"
    "        self.wfile.write(b'hello')\n"
    "    def log_message(self, *args):\n"
    "        pass\n"
    "s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
    "s.daemon_threads = True\n"
    "with open(os.path.join(d, 'http.port.tmp'), 'w') as f:\n"
    "    f.write(str(s.server_address[1]))\n"
    "os.rename(os.path.join(d, 'http.port.tmp'), os.path.join(d, 'http.port'))\n"
    "s.serve_forever()\n";

//  An aiosmtpd server on an ephemeral port of 127.0.0.1: DIR/smtp.port,
//  then each message in DIR/mail-N: the envelope, then the content as
//  received (dots already undone by the server, as RFC 5321 says).
static const char *s_smtp_server =
    "import asyncio, os, sys\n"
    "from aiosmtpd.smtp import SMTP\n"
    "d = sys.argv[1]\n"
    "count = [0]\n"
    "class H:\n"
    "    async def handle_DATA(self, server, session, envelope):\n"
    "        count[0] += 1\n"
    "        name = os.path.join(d, 'mail-%d' % count[0])\n"
    "        with open(name + '.tmp', 'wb') as f:\n"
    "            f.write(('MAIL FROM: %s\\n' % envelope.mail_from).encode())\n"
    "            f.write(('RCPT TO: %s\\n' % ','.join(envelope.rcpt_tos)).encode())\n"
    "            f.write(envelope.original_content)\n"
    "        os.rename(name + '.tmp', name)\n"
    "        return '250 Message accepted for delivery'\n"
    "async def main():\n"
    "    loop = asyncio.get_running_loop()\n"
    "    server = await loop.create_server(\n"
    "        lambda: SMTP(H(), hostname='localhost'), '127.0.0.1', 0)\n"
    "    port = server.sockets[0].getsockname()[1]\n"
    "    with open(os.path.join(d, 'smtp.port.tmp'), 'w') as f:\n"
    "        f.write(str(port))\n"
    "    os.rename(os.path.join(d, 'smtp.port.tmp'), os.path.join(d, 'smtp.port'))\n"
    "    await server.serve_forever()\n"
    "asyncio.run(main())\n";

static int64_t
s_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void
s_sleep_ms (int ms)
{
    struct timespec pause = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep (&pause, NULL);
}

//  The whole content of a file, NUL-terminated, or NULL
static char *
s_read_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    size_t size = 0, alloc = 4096;
    char *data = (char *) malloc (alloc);
    size_t got;
    while (data && (got = fread (data + size, 1, alloc - size - 1, file)) > 0) {
        size += got;
        if (alloc - size - 1 == 0) {
            alloc *= 2;
            char *bigger = (char *) realloc (data, alloc);
            if (!bigger) {
                free (data);
                data = NULL;
            }
            else
                data = bigger;
        }
    }
    fclose (file);
    if (data)
        data [size] = 0;
    return data;
}

static void
s_write_file (const char *path, const char *text, mode_t mode)
{
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    assert_int_equal (chmod (path, mode), 0);
}

static size_t
s_count (const char *haystack, const char *needle)
{
    size_t count = 0;
    for (const char *scan = strstr (haystack, needle); scan;
         scan = strstr (scan + strlen (needle), needle))
        count++;
    return count;
}

//  Start `python -c script dir` and wait (bounded) for DIR/NAME.port
static pid_t
s_start_server (const char *dir, const char *script, const char *name, int *port)
{
    pid_t pid = fork ();
    if (pid == 0) {
        //  The servers talk only to their files; keep the test output clean
        int null = open ("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2 (null, STDOUT_FILENO);
        execl (PYTHON, PYTHON, "-c", script, dir, (char *) NULL);
        _exit (127);
    }
    if (pid < 0)
        return -1;
    char path [512];
    snprintf (path, sizeof path, "%s/%s.port", dir, name);
    int64_t deadline = s_now_ms () + S_START_TIMEOUT_MS;
    while (s_now_ms () < deadline) {
        char *text = s_read_file (path);
        if (text) {
            *port = atoi (text);
            free (text);
            return pid;
        }
        int status;
        if (waitpid (pid, &status, WNOHANG) == pid)
            return -1;      //  it died: python or aiosmtpd missing
        s_sleep_ms (S_POLL_MS);
    }
    kill (pid, SIGKILL);
    waitpid (pid, NULL, 0);
    return -1;
}

static void
s_stop_server (pid_t *pid)
{
    if (*pid > 0) {
        kill (*pid, SIGKILL);
        waitpid (*pid, NULL, 0);
        *pid = -1;
    }
}

static int
s_group_setup (void **state)
{
    group_t *group = (group_t *) calloc (1, sizeof (group_t));
    if (!group)
        return -1;
    group->http_pid = group->smtp_pid = -1;
    snprintf (group->dir, sizeof group->dir, "/tmp/pole-test-channel-XXXXXX");
    if (!mkdtemp (group->dir))
        return -1;
    group->http_pid = s_start_server (group->dir, s_http_server, "http",
                                      &group->http_port);
    group->smtp_pid = s_start_server (group->dir, s_smtp_server, "smtp",
                                      &group->smtp_port);
    *state = group;
    if (group->http_pid < 0 || group->smtp_pid < 0) {
        fprintf (stderr, "test servers did not start\n");
        s_stop_server (&group->http_pid);
        s_stop_server (&group->smtp_pid);
        return -1;
    }
    return 0;
}

static int
s_group_teardown (void **state)
{
    group_t *group = (group_t *) *state;
    if (!group)
        return 0;
    s_stop_server (&group->http_pid);
    s_stop_server (&group->smtp_pid);
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", group->dir);
    int rc = system (command);
    free (group);
    return rc == 0 ? 0 : -1;
}

//  A port of 127.0.0.1 on which nobody listens (bound, then released)
static int
s_closed_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (fd >= 0);
    struct sockaddr_in address = { 0 };
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert_int_equal (bind (fd, (struct sockaddr *) &address, sizeof address), 0);
    socklen_t size = sizeof address;
    assert_int_equal (getsockname (fd, (struct sockaddr *) &address, &size), 0);
    close (fd);
    return ntohs (address.sin_port);
}

//  A notice as the worker would read it: study granted in Dinan
static pole_notice_t
s_notice (void)
{
    pole_notice_t notice = {
        .id = "12-0",
        .coordinator = "CRES",
        .dossier = 3,
        .pays = "Dinan",
        .departement = 22,
        .holder = "Conseil de développement du Pays de Dinan",
        .title = "Pôle ESS du Pays de Dinan",
        .event = "grant_study",
        .from = "study_requested",
        .to = "study_funded",
        .actor = "region",
        .at = "2026-11-27T22:33:37Z",
        .json = "{\"id\":\"12-0\",\"dossier\":3}",
    };
    return notice;
}

//  The French part and the English part of a text, split at the separator
static void
s_split (const char *text, char **french, char **english)
{
    const char *separator = strstr (text, "— English —");
    assert_non_null (separator);
    //  Only one separator, even in a digest
    assert_null (strstr (separator + 1, "— English —"));
    *french = strndup (text, (size_t) (separator - text));
    *english = strdup (separator);
}

//  --------------------------------------------------------------------------
//  The text

static void
test_text_one_notice (void **state)
{
    (void) state;
    pole_notice_t notice = s_notice ();
    char *text = pole_notice_text (&notice, 1);
    assert_non_null (text);
    char *french, *english;
    s_split (text, &french, &english);

    assert_non_null (strstr (french, "Dossier 3 : Pôle ESS du Pays de Dinan"));
    assert_non_null (strstr (french, "Pays : Dinan (département 22)"));
    assert_non_null (strstr (french, "Porteur : Conseil de développement du Pays de Dinan"));
    assert_non_null (strstr (french, "study_requested → study_funded par l'événement grant_study"));
    assert_non_null (strstr (french, "Acteur : region"));
    assert_non_null (strstr (french, "2026-11-27T22:33:37Z"));
    //  study_funded is left by deliver_study or withdraw
    assert_non_null (strstr (french, "Suite attendue : deliver_study, withdraw\n"));

    assert_non_null (strstr (english, "Dossier 3: Pôle ESS du Pays de Dinan"));
    assert_non_null (strstr (english, "Holder: Conseil de développement du Pays de Dinan"));
    assert_non_null (strstr (english, "study_requested → study_funded by event grant_study"));
    assert_non_null (strstr (english, "Actor: region"));
    assert_non_null (strstr (english, "Expected next: deliver_study, withdraw\n"));
    assert_null (strstr (english, "Suite attendue"));

    char *subject = pole_notice_subject (&notice, 1);
    assert_non_null (subject);
    assert_memory_equal (subject, "[pole] ", 7);
    assert_non_null (strstr (subject, "Dinan"));
    assert_non_null (strstr (subject, "study_funded"));
    assert_null (strpbrk (subject, "\r\n"));
    free (subject);
    free (french);
    free (english);
    free (text);
}

static void
test_text_open_and_terminal (void **state)
{
    (void) state;
    pole_notice_t notice = s_notice ();
    notice.event = "open";
    notice.from = NULL;
    notice.to = "draft";
    notice.title = NULL;
    char *text = pole_notice_text (&notice, 1);
    assert_non_null (text);
    assert_non_null (strstr (text, "Transition : ouverture → draft"));
    assert_non_null (strstr (text, "Transition: opened → draft"));
    assert_non_null (strstr (text, "(sans titre)"));
    assert_non_null (strstr (text, "(untitled)"));
    assert_non_null (strstr (text, "Suite attendue : legitimate_holder, request_study, withdraw\n"));
    free (text);

    //  A terminal state: nothing is expected, reopen is not an expectation
    notice = s_notice ();
    notice.event = "withdraw";
    notice.from = "study_funded";
    notice.to = "withdrawn";
    text = pole_notice_text (&notice, 1);
    assert_non_null (text);
    assert_non_null (strstr (text, "Suite attendue : aucune (état final"));
    assert_non_null (strstr (text, "Expected next: none (final state"));
    free (text);

    //  start_next_year has two rows in the table, it is named once
    notice = s_notice ();
    notice.event = "grant_posts";
    notice.from = "posts_requested";
    notice.to = "funding_year_1";
    text = pole_notice_text (&notice, 1);
    assert_non_null (text);
    assert_non_null (strstr (text,
        "Suite attendue : file_annual_report, start_next_year, close\n"));
    assert_non_null (strstr (text,
        "Expected next: file_annual_report, start_next_year, close\n"));
    free (text);
}

static void
test_text_digest (void **state)
{
    (void) state;
    pole_notice_t notices [3] = { s_notice (), s_notice (), s_notice () };
    notices [0].id = "10-2";
    notices [0].title = "Premier dossier";
    notices [1].id = "11-2";
    notices [1].dossier = 4;
    notices [1].pays = "Fougères";
    notices [1].departement = 35;
    notices [1].title = "Deuxième dossier";
    notices [2].id = "12-2";
    notices [2].dossier = 5;
    notices [2].title = "Troisième dossier";
    notices [2].event = "reject";
    notices [2].from = "study_delivered";
    notices [2].to = "not_validated";

    char *text = pole_notice_text (notices, 3);
    assert_non_null (text);
    char *french, *english;
    s_split (text, &french, &english);
    const char *titles [] = { "Premier dossier", "Deuxième dossier", "Troisième dossier" };
    for (int index = 0; index < 3; index++) {
        assert_int_equal (s_count (french, titles [index]), 1);
        assert_int_equal (s_count (english, titles [index]), 1);
    }
    assert_int_equal (s_count (french, "Dossier "), 3);
    assert_int_equal (s_count (english, "Dossier "), 3);
    assert_non_null (strstr (french, "1. Dossier 3 :"));
    assert_non_null (strstr (french, "2. Dossier 4 :"));
    assert_non_null (strstr (french, "3. Dossier 5 :"));
    assert_non_null (strstr (english, "3. Dossier 5:"));
    assert_non_null (strstr (french, "Fougères (département 35)"));
    assert_non_null (strstr (french, "Résumé de 3 notifications"));
    assert_non_null (strstr (english, "Digest of 3 pole notifications"));
    assert_int_equal (s_count (french, "Suite attendue"), 3);
    assert_int_equal (s_count (english, "Expected next"), 3);
    assert_non_null (strstr (english, "none (final state"));
    assert_non_null (strstr (english, "10-2"));
    assert_non_null (strstr (english, "12-2"));

    char *subject = pole_notice_subject (notices, 3);
    assert_non_null (subject);
    assert_memory_equal (subject, "[pole] ", 7);
    assert_non_null (strstr (subject, "3"));
    free (subject);
    free (french);
    free (english);
    free (text);
}

//  User text is never cut, however long
static void
test_text_long_title (void **state)
{
    (void) state;
    size_t size = 20000;
    char *title = (char *) malloc (size + 1);
    assert_non_null (title);
    for (size_t index = 0; index < size; index++)
        title [index] = (char) ('a' + index % 26);
    title [size - 1] = 'Z';
    title [size] = 0;
    pole_notice_t notice = s_notice ();
    notice.title = title;
    char *text = pole_notice_text (&notice, 1);
    assert_non_null (text);
    assert_int_equal (s_count (text, title), 2);
    free (text);
    free (title);
}

//  --------------------------------------------------------------------------
//  The signature

static void
test_signature_rfc4231 (void **state)
{
    (void) state;
    char out [80];
    //  Test case 2: a key shorter than the block
    const char *data = "what do ya want for nothing?";
    pole_channel_signature ("Jefe", data, strlen (data), out, sizeof out);
    assert_string_equal (out, "sha256=5bdcc146bf60754e6a042426089575c7"
                              "5a003f089d2739839dec58b964ec3843");

    //  Test case 6: a key longer than the block (131 bytes of 0xaa)
    char key [132];
    memset (key, 0xaa, 131);
    key [131] = 0;
    data = "Test Using Larger Than Block-Size Key - Hash Key First";
    pole_channel_signature (key, data, strlen (data), out, sizeof out);
    assert_string_equal (out, "sha256=60e431591ee0b67f0d8a26aacbf5b77f"
                              "8e0bc6213728c5140546040f0ee37f54");

    //  The exact bytes are signed, a NUL inside included
    char first [80], second [80];
    pole_channel_signature ("k", "a\0b", 3, first, sizeof first);
    pole_channel_signature ("k", "a\0c", 3, second, sizeof second);
    assert_string_not_equal (first, second);

    //  Too small a buffer gets an empty string, never a cut signature
    char small [40] = "x";
    pole_channel_signature ("Jefe", "x", 1, small, sizeof small);
    assert_string_equal (small, "");
}

//  --------------------------------------------------------------------------
//  The command channel

static pole_channel_settings_t
s_settings (int webhook_ms, int command_ms)
{
    pole_channel_settings_t settings = {
        .smtp_url = "smtp://127.0.0.1:25",
        .smtp_from = "poled@localhost",
        .smtp_starttls = false,
        .smtp_username = "",
        .smtp_password = "",
        .webhook_timeout_ms = webhook_ms,
        .command_timeout_ms = command_ms,
    };
    return settings;
}

static void
test_command_environment (void **state)
{
    group_t *group = (group_t *) *state;
    //  A descriptor without close-on-exec: the program must not inherit it
    int leak = open ("/dev/zero", O_RDONLY);
    assert_true (leak > 2);
    setenv ("POLE_TEST_SECRET", "do-not-leak", 1);

    char script [512], output [512], text [4096];
    snprintf (script, sizeof script, "%s/notify-ok.sh", group->dir);
    snprintf (output, sizeof output, "%s/env.out", group->dir);
    snprintf (text, sizeof text,
              "#!/bin/sh\n"
              "env > '%s'\n"
              "echo \"STDIN=$(readlink /proc/$$/fd/0)\" >> '%s'\n"
              "echo \"STDOUT=$(readlink /proc/$$/fd/1)\" >> '%s'\n"
              "if [ -e /proc/$$/fd/%d ]; then echo LEAKED >> '%s'; fi\n"
              "echo to-dev-null\n"
              "exit 0\n",
              output, output, output, leak, output);
    s_write_file (script, text, 0755);

    pole_channel_settings_t settings = s_settings (1000, 5000);
    pole_notice_t notice = s_notice ();
    const char *json = "{\"id\":\"12-0\",\"title\":\"Pôle \\\"ESS\\\"\"}";
    char error [256] = "";
    int rc = pole_channel_command (&settings, script, &notice, json, error,
                                   sizeof error);
    close (leak);
    unsetenv ("POLE_TEST_SECRET");
    if (rc != 0)
        fail_msg ("command: %s", error);

    char *env = s_read_file (output);
    assert_non_null (env);
    assert_non_null (strstr (env, "PATH=/usr/bin:/bin\n"));
    assert_non_null (strstr (env, "POLE_NOTIFICATION_ID=12-0\n"));
    assert_non_null (strstr (env, "POLE_COORDINATOR=CRES\n"));
    assert_non_null (strstr (env, "POLE_DOSSIER=3\n"));
    assert_non_null (strstr (env, "POLE_PAYS=Dinan\n"));
    assert_non_null (strstr (env, "POLE_EVENT=grant_study\n"));
    assert_non_null (strstr (env, "POLE_FROM=study_requested\n"));
    assert_non_null (strstr (env, "POLE_TO=study_funded\n"));
    assert_non_null (strstr (env, "POLE_ACTOR=region\n"));
    assert_non_null (strstr (env, "POLE_AT=2026-11-27T22:33:37Z\n"));
    assert_non_null (strstr (env, "POLE_PAYLOAD={\"id\":\"12-0\",\"title\":\"Pôle \\\"ESS\\\"\"}\n"));
    assert_non_null (strstr (env, "STDIN=/dev/null\n"));
    assert_non_null (strstr (env, "STDOUT=/dev/null\n"));
    assert_null (strstr (env, "do-not-leak"));
    assert_null (strstr (env, "HOME="));
    assert_null (strstr (env, "LEAKED"));
    free (env);

    //  open: POLE_FROM is there, empty
    notice.event = "open";
    notice.from = NULL;
    notice.to = "draft";
    assert_int_equal (pole_channel_command (&settings, script, &notice, json,
                                            error, sizeof error), 0);
    env = s_read_file (output);
    assert_non_null (env);
    assert_true (strstr (env, "\nPOLE_FROM=\n")
                 || strncmp (env, "POLE_FROM=\n", 11) == 0);
    assert_non_null (strstr (env, "POLE_EVENT=open\n"));
    free (env);
}

static void
test_command_failures (void **state)
{
    group_t *group = (group_t *) *state;
    pole_channel_settings_t settings = s_settings (1000, 200);
    pole_notice_t notice = s_notice ();
    char script [512], error [256];

    //  A non-zero exit
    snprintf (script, sizeof script, "%s/notify-3.sh", group->dir);
    s_write_file (script, "#!/bin/sh\nexit 3\n", 0755);
    assert_int_equal (pole_channel_command (&settings, script, &notice, "{}",
                                            error, sizeof error), -1);
    assert_string_equal (error, "exit status 3");

    //  Killed by a signal
    snprintf (script, sizeof script, "%s/notify-kill.sh", group->dir);
    s_write_file (script, "#!/bin/sh\nkill -KILL $$\n", 0755);
    assert_int_equal (pole_channel_command (&settings, script, &notice, "{}",
                                            error, sizeof error), -1);
    assert_string_equal (error, "killed by signal 9");

    //  Too slow: killed at the timeout, with what it started, and quickly
    snprintf (script, sizeof script, "%s/notify-slow.sh", group->dir);
    s_write_file (script, "#!/bin/sh\nsleep 5\n", 0755);
    int64_t start = s_now_ms ();
    assert_int_equal (pole_channel_command (&settings, script, &notice, "{}",
                                            error, sizeof error), -1);
    int64_t elapsed = s_now_ms () - start;
    assert_string_equal (error, "timed out after 200 ms");
    assert_true (elapsed >= 200);
    assert_true (elapsed < 1500);

    //  Not there, not executable, not absolute
    snprintf (script, sizeof script, "%s/missing.sh", group->dir);
    assert_int_equal (pole_channel_command (&settings, script, &notice, "{}",
                                            error, sizeof error), -1);
    assert_non_null (strstr (error, strerror (ENOENT)));
    snprintf (script, sizeof script, "%s/not-executable.sh", group->dir);
    s_write_file (script, "#!/bin/sh\nexit 0\n", 0644);
    assert_int_equal (pole_channel_command (&settings, script, &notice, "{}",
                                            error, sizeof error), -1);
    assert_non_null (strstr (error, strerror (EACCES)));
    assert_int_equal (pole_channel_command (&settings, "bin/true", &notice, "{}",
                                            error, sizeof error), -1);
    assert_non_null (strstr (error, "absolute"));
}

//  --------------------------------------------------------------------------
//  The webhook

//  The value of header `name` in a request file, or NULL
static char *
s_header (const char *request, const char *name)
{
    char prefix [128];
    snprintf (prefix, sizeof prefix, "\n%s: ", name);
    const char *start = strstr (request, prefix);
    if (!start)
        return NULL;
    start += strlen (prefix);
    return strndup (start, strcspn (start, "\r\n"));
}

static void
test_webhook_delivered (void **state)
{
    group_t *group = (group_t *) *state;
    pole_channel_settings_t settings = s_settings (2000, 1000);
    char url [128], error [256] = "", path [512];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/ok", group->http_port);
    const char *json = "{\"id\":\"20-1\",\"title\":\"Pôle ESS\",\"seq\":20}";
    int rc = pole_channel_webhook (&settings, url, "change-me", "20-1", json,
                                   error, sizeof error);
    if (rc != 0)
        fail_msg ("webhook: %s", error);

    snprintf (path, sizeof path, "%s/req-20-1", group->dir);
    char *request = s_read_file (path);
    assert_non_null (request);
    assert_memory_equal (request, "/ok\n", 4);
    char *type = s_header (request, "Content-Type");
    char *id = s_header (request, "X-Pole-Notification-Id");
    char *signature = s_header (request, "X-Pole-Signature");
    assert_non_null (type);
    assert_non_null (id);
    assert_non_null (signature);
    assert_string_equal (type, "application/json");
    assert_string_equal (id, "20-1");
    char expected [80];
    pole_channel_signature ("change-me", json, strlen (json), expected,
                            sizeof expected);
    assert_string_equal (signature, expected);
    //  The body, byte for byte, after the blank line
    const char *body = strstr (request, "\n\n");
    assert_non_null (body);
    assert_string_equal (body + 2, json);
    free (type);
    free (id);
    free (signature);
    free (request);
}

static void
test_webhook_failures (void **state)
{
    group_t *group = (group_t *) *state;
    pole_channel_settings_t settings = s_settings (2000, 1000);
    char url [128], error [256], path [512];

    //  A 500 is a failure
    snprintf (url, sizeof url, "http://127.0.0.1:%d/fail", group->http_port);
    assert_int_equal (pole_channel_webhook (&settings, url, "s", "21-1", "{}",
                                            error, sizeof error), -1);
    assert_string_equal (error, "HTTP 500");

    //  A redirect is not followed, and is a failure
    snprintf (url, sizeof url, "http://127.0.0.1:%d/redirect", group->http_port);
    assert_int_equal (pole_channel_webhook (&settings, url, "s", "22-1", "{}",
                                            error, sizeof error), -1);
    assert_string_equal (error, "HTTP 302");
    snprintf (path, sizeof path, "%s/req-22-1", group->dir);
    char *request = s_read_file (path);
    assert_non_null (request);
    assert_memory_equal (request, "/redirect\n", 10);
    free (request);

    //  Nobody listening
    snprintf (url, sizeof url, "http://127.0.0.1:%d/ok", s_closed_port ());
    error [0] = 0;
    assert_int_equal (pole_channel_webhook (&settings, url, "s", "23-1", "{}",
                                            error, sizeof error), -1);
    assert_true (strlen (error) > 0);

    //  Too slow: given up at the timeout
    settings.webhook_timeout_ms = 300;
    snprintf (url, sizeof url, "http://127.0.0.1:%d/slow", group->http_port);
    int64_t start = s_now_ms ();
    assert_int_equal (pole_channel_webhook (&settings, url, "s", "24-1", "{}",
                                            error, sizeof error), -1);
    assert_true (s_now_ms () - start < 2000);
    assert_non_null (strstr (error, "imeout"));

    //  Only http and https; a header cannot be smuggled in through the id
    assert_int_equal (pole_channel_webhook (&settings, "file:///etc/passwd", "s",
                                            "25-1", "{}", error, sizeof error), -1);
    assert_int_equal (pole_channel_webhook (&settings, "ftp://127.0.0.1/", "s",
                                            "25-1", "{}", error, sizeof error), -1);
    snprintf (url, sizeof url, "http://127.0.0.1:%d/ok", group->http_port);
    assert_int_equal (pole_channel_webhook (&settings, url, "s", "26-1\r\nX-Evil: 1",
                                            "{}", error, sizeof error), -1);
}

//  --------------------------------------------------------------------------
//  E-mail

//  The received message whose content holds `needle`, or NULL; waits a
//  little, as the server writes the file after answering
static char *
s_find_mail (group_t *group, const char *needle)
{
    int64_t deadline = s_now_ms () + 5000;
    while (s_now_ms () < deadline) {
        for (int index = 1; index < 100; index++) {
            char path [512];
            snprintf (path, sizeof path, "%s/mail-%d", group->dir, index);
            char *mail = s_read_file (path);
            if (!mail)
                break;
            if (strstr (mail, needle))
                return mail;
            free (mail);
        }
        s_sleep_ms (S_POLL_MS);
    }
    return NULL;
}

//  The Subject of a message, its encoded-words decoded
static char *
s_decoded_subject (const char *mail)
{
    const char *start = strstr (mail, "\r\nSubject: ");
    if (!start)
        return NULL;
    start += strlen ("\r\nSubject: ");
    char *subject = (char *) calloc (1, strlen (mail) + 1);
    size_t size = 0;
    const char *scan = start;
    while (true) {
        const char *word = strstr (scan, "=?UTF-8?B?");
        const char *line_end = strstr (scan, "\r\n");
        if (!word || word > line_end)
            break;
        word += strlen ("=?UTF-8?B?");
        const char *end = strstr (word, "?=");
        size_t decoded = 0;
        assert_int_equal (sodium_base642bin ((unsigned char *) subject + size,
                                             strlen (mail) - size, word,
                                             (size_t) (end - word), NULL,
                                             &decoded, NULL,
                                             sodium_base64_VARIANT_ORIGINAL), 0);
        //  Every encoded-word is at most 75 characters
        assert_true ((size_t) (end + 2 - (word - 10)) <= 75);
        size += decoded;
        scan = end + 2;
        //  Folded: the next word is on a continuation line
        if (strncmp (scan, "\r\n ", 3) == 0)
            scan += 3;
    }
    if (size == 0)      //  plain ASCII
        memcpy (subject, start, strcspn (start, "\r\n"));
    return subject;
}

static void
test_email_delivered (void **state)
{
    group_t *group = (group_t *) *state;
    pole_channel_settings_t settings = s_settings (2000, 1000);
    char url [128], error [256] = "";
    snprintf (url, sizeof url, "smtp://127.0.0.1:%d", group->smtp_port);
    settings.smtp_url = url;
    settings.smtp_from = "Pole <poled@localhost>";

    pole_notice_t notice = s_notice ();
    notice.id = "30-0";
    char *subject = pole_notice_subject (&notice, 1);
    char *text = pole_notice_text (&notice, 1);
    assert_non_null (subject);
    assert_non_null (text);
    int rc = pole_channel_email (&settings, "cres@example.org", "30-0", subject,
                                 text, error, sizeof error);
    if (rc != 0)
        fail_msg ("email: %s", error);

    char *mail = s_find_mail (group, "Message-ID: <30-0@pole>\r\n");
    assert_non_null (mail);
    assert_non_null (strstr (mail, "MAIL FROM: poled@localhost\n"));
    assert_non_null (strstr (mail, "RCPT TO: cres@example.org\n"));
    assert_non_null (strstr (mail, "\r\nFrom: Pole <poled@localhost>\r\n"));
    assert_non_null (strstr (mail, "\r\nTo: cres@example.org\r\n"));
    assert_non_null (strstr (mail, "\r\nX-Pole-Notification-Id: 30-0\r\n"));
    assert_non_null (strstr (mail, "\r\nMIME-Version: 1.0\r\n"));
    assert_non_null (strstr (mail, "\r\nContent-Type: text/plain; charset=UTF-8\r\n"));
    assert_non_null (strstr (mail, "\r\nContent-Transfer-Encoding: 8bit\r\n"));
    assert_non_null (strstr (mail, "\nDate: "));
    assert_non_null (strstr (mail, " +0000\r\n"));
    //  The subject is non-ASCII (the arrow), so encoded, and decodes back
    assert_non_null (strstr (mail, "Subject: =?UTF-8?B?"));
    char *decoded = s_decoded_subject (mail);
    assert_non_null (decoded);
    assert_string_equal (decoded, subject);
    free (decoded);
    //  Both languages, in UTF-8, with CRLF line ends
    assert_non_null (strstr (mail, "\r\n\r\nNotification pole pour CRES\r\n"));
    assert_non_null (strstr (mail, "Suite attendue : deliver_study, withdraw\r\n"));
    assert_non_null (strstr (mail, "\r\n— English —\r\n"));
    assert_non_null (strstr (mail, "Expected next: deliver_study, withdraw\r\n"));
    assert_non_null (strstr (mail, "Pays : Dinan (département 22)\r\n"));
    free (mail);
    free (subject);
    free (text);
}

//  Dots at the start of a line arrive as written (curl stuffs them, the
//  server unstuffs them, nobody does it twice); long lines are broken
static void
test_email_dots_and_long_lines (void **state)
{
    group_t *group = (group_t *) *state;
    pole_channel_settings_t settings = s_settings (2000, 1000);
    char url [128], error [256] = "";
    snprintf (url, sizeof url, "smtp://127.0.0.1:%d", group->smtp_port);
    settings.smtp_url = url;

    //  3000 bytes of "é" on one line, after dotted lines
    size_t long_size = 3000;
    char *body = (char *) malloc (long_size + 200);
    assert_non_null (body);
    strcpy (body, "first\n.dotted\n.\n..two\nmac\rline\n");
    size_t size = strlen (body);
    for (size_t index = 0; index < long_size / 2; index++) {
        body [size++] = (char) 0xC3;
        body [size++] = (char) 0xA9;
    }
    strcpy (body + size, "\nlast");
    int rc = pole_channel_email (&settings, "<ess@ille-et-vilaine.example>",
                                 "31-2", "[pole] ASCII subject", body, error,
                                 sizeof error);
    if (rc != 0)
        fail_msg ("email: %s", error);
    char *mail = s_find_mail (group, "Message-ID: <31-2@pole>\r\n");
    assert_non_null (mail);
    assert_non_null (strstr (mail, "RCPT TO: ess@ille-et-vilaine.example\n"));
    assert_non_null (strstr (mail, "\r\nSubject: [pole] ASCII subject\r\n"));
    assert_non_null (strstr (mail, "\r\n\r\nfirst\r\n.dotted\r\n.\r\n..two\r\n"
                                   "mac\r\nline\r\n"));
    assert_non_null (strstr (mail, "\r\nlast\r\n"));
    //  No line over 998 octets, no character cut in two
    for (const char *line = mail; *line; ) {
        size_t length = strcspn (line, "\n");
        assert_true (length <= 1000);
        line += length;
        if (*line)
            line++;
    }
    assert_int_equal (s_count (mail, "é"), long_size / 2);
    free (mail);
    free (body);
}

static void
test_email_failures (void **state)
{
    group_t *group = (group_t *) *state;
    pole_channel_settings_t settings = s_settings (1000, 1000);
    char url [128], error [256];

    //  Nobody listening
    snprintf (url, sizeof url, "smtp://127.0.0.1:%d", s_closed_port ());
    settings.smtp_url = url;
    error [0] = 0;
    assert_int_equal (pole_channel_email (&settings, "a@example.org", "40-0",
                                          "[pole] x", "x", error, sizeof error), -1);
    assert_true (strlen (error) > 0);

    //  Headers cannot be smuggled in through the recipient or the id
    snprintf (url, sizeof url, "smtp://127.0.0.1:%d", group->smtp_port);
    assert_int_equal (pole_channel_email (&settings, "a@example.org\r\nBcc: b@example.org",
                                          "41-0", "[pole] x", "x", error,
                                          sizeof error), -1);
    assert_int_equal (pole_channel_email (&settings, "a@example.org", "41-0>\r\nBcc: b",
                                          "[pole] x", "x", error, sizeof error), -1);
    //  Not an SMTP URL
    settings.smtp_url = "http://127.0.0.1:1/";
    assert_int_equal (pole_channel_email (&settings, "a@example.org", "42-0",
                                          "[pole] x", "x", error, sizeof error), -1);
}

int
main (void)
{
    curl_global_init (CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_text_one_notice),
        cmocka_unit_test (test_text_open_and_terminal),
        cmocka_unit_test (test_text_digest),
        cmocka_unit_test (test_text_long_title),
        cmocka_unit_test (test_signature_rfc4231),
        cmocka_unit_test (test_command_environment),
        cmocka_unit_test (test_command_failures),
        cmocka_unit_test (test_webhook_delivered),
        cmocka_unit_test (test_webhook_failures),
        cmocka_unit_test (test_email_delivered),
        cmocka_unit_test (test_email_dots_and_long_lines),
        cmocka_unit_test (test_email_failures),
    };
    int rc = cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
    curl_global_cleanup ();
    return rc;
}

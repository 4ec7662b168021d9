/*  =========================================================================
    test_config - pole_config: the shipped file, defaults, and refusals

    The shipped config/poled.cfg must load with the 21 Pays and the
    programme sheet's values; a missing group must leave its defaults in
    force; and every kind of mistake an administrator can make must be
    refused with "FILE:LINE: reason" pointing at the line to fix. The bad
    files are written into a private mkdtemp() directory.

    POLE_SOURCE_DIR names the source tree (set by ctest); "." otherwise.
    =========================================================================
*/

#ifndef _GNU_SOURCE
#define _GNU_SOURCE     //  mkdtemp
#endif
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pole/config.h"

//  The private directory the test files go to, made by the group setup
static char s_dir [1024];
static int s_file_count = 0;

//  A minimal valid territories list, to append to files that test another
//  part of the configuration
#define S_ONE_PAYS \
    "territories = ( { name = \"Brest\"; departement = 29; } );\n"


//  --------------------------------------------------------------------------
//  Write `text` into a fresh file of the test directory; the path is
//  written into `path`.

static void
s_write (const char *text, char *path, size_t size)
{
    snprintf (path, size, "%s/case-%03d.cfg", s_dir, ++s_file_count);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    assert_int_equal (fputs (text, file) >= 0, 1);
    assert_int_equal (fclose (file), 0);
}


//  --------------------------------------------------------------------------
//  Load `text`, which must be refused with a message that starts with
//  "FILE:LINE: " (or "FILE: " when `line` is 0) and contains `needle`.

static void
s_expect_refused (const char *text, int line, const char *needle)
{
    char path [PATH_MAX];
    s_write (text, path, sizeof path);

    char error [512] = "untouched";
    pole_config_t *config = pole_config_load (path, error, sizeof error);
    if (config) {
        pole_config_destroy (&config);
        fail_msg ("accepted, should have been refused:\n%s", text);
    }
    char prefix [PATH_MAX + 32];
    if (line > 0)
        snprintf (prefix, sizeof prefix, "%s:%d: ", path, line);
    else
        snprintf (prefix, sizeof prefix, "%s: ", path);
    if (strncmp (error, prefix, strlen (prefix)) != 0)
        fail_msg ("message \"%s\" does not start with \"%s\"", error, prefix);
    if (!strstr (error, needle))
        fail_msg ("message \"%s\" does not contain \"%s\"", error, needle);
}


//  --------------------------------------------------------------------------
//  Load `text`, which must be accepted.

static pole_config_t *
s_expect_loaded (const char *text)
{
    char path [PATH_MAX];
    s_write (text, path, sizeof path);
    char error [512] = "";
    pole_config_t *config = pole_config_load (path, error, sizeof error);
    if (!config)
        fail_msg ("refused: %s\n%s", error, text);
    return config;
}


static int
s_group_setup (void **state)
{
    (void) state;
    const char *tmp = getenv ("TMPDIR");
    snprintf (s_dir, sizeof s_dir, "%s/pole-test-config-XXXXXX",
              tmp && *tmp ? tmp : "/tmp");
    return mkdtemp (s_dir) ? 0 : -1;
}

static int
s_group_teardown (void **state)
{
    (void) state;
    DIR *dir = opendir (s_dir);
    if (!dir)
        return -1;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        if (entry->d_name [0] == '.')
            continue;
        char path [PATH_MAX + 256];
        snprintf (path, sizeof path, "%s/%s", s_dir, entry->d_name);
        unlink (path);
    }
    closedir (dir);
    return rmdir (s_dir);
}


//  --------------------------------------------------------------------------
//  The shipped file: the 21 Pays of DOMAIN.md, spelt with their accents,
//  and the sheet's values.

static const pole_territory_t s_pays [] = {
    { "Brest", 29 }, { "Morlaix", 29 }, { "Cornouaille", 29 },
    { "Centre-Ouest Bretagne", 29 },
    { "Dinan", 22 }, { "Guingamp", 22 }, { "Saint-Brieuc", 22 },
    { "Trégor-Goëlo", 22 }, { "Centre Bretagne", 22 },
    { "Rennes", 35 }, { "Brocéliande", 35 }, { "Fougères", 35 },
    { "Saint-Malo", 35 }, { "Vallons de Vilaine", 35 },
    { "Vitré-Porte de Bretagne", 35 }, { "Redon et Vilaine", 35 },
    { "Auray", 56 }, { "Lorient", 56 }, { "Ploërmel-Cœur de Bretagne", 56 },
    { "Pontivy", 56 }, { "Vannes", 56 }
};
#define S_PAYS_COUNT (sizeof s_pays / sizeof s_pays [0])

static void
test_shipped_config (void **state)
{
    (void) state;
    const char *source = getenv ("POLE_SOURCE_DIR");
    char path [PATH_MAX];
    snprintf (path, sizeof path, "%s/config/poled.cfg",
              source && *source ? source : ".");

    char error [512] = "";
    pole_config_t *config = pole_config_load (path, error, sizeof error);
    if (!config)
        fail_msg ("%s", error);

    assert_string_equal (pole_config_path (config), path);
    assert_string_equal (pole_config_endpoint (config), "tcp://127.0.0.1:5570");
    assert_string_equal (pole_config_database (config),
                         "/var/lib/pole/pole.db");
    assert_int_equal (pole_config_max_message_size (config), 65536);
    assert_int_equal (pole_config_batch_max (config), 256);

    const pole_params_t *params = pole_config_params (config);
    assert_non_null (params);
    assert_int_equal (params->study_cap_eur, 25000);
    assert_int_equal (params->max_posts, 2);
    assert_int_equal (params->post_eur_per_year, 35000);
    assert_int_equal (params->funding_years, 3);
    assert_int_equal (params->live_per_pays, 1);

    assert_int_equal (params->territory_count, S_PAYS_COUNT);
    assert_non_null (params->territories);
    for (size_t index = 0; index < S_PAYS_COUNT; index++) {
        assert_string_equal (params->territories [index].name,
                             s_pays [index].name);
        assert_int_equal (params->territories [index].departement,
                          s_pays [index].departement);
    }
    //  The territories are usable as they are by the engine's lookup
    const pole_territory_t *dinan = pole_pays_lookup (params, "Pays de Dinan");
    assert_non_null (dinan);
    assert_string_equal (dinan->name, "Dinan");
    assert_int_equal (dinan->departement, 22);
    assert_null (pole_pays_lookup (params, "Nantes"));

    pole_config_destroy (&config);
    assert_null (config);
    //  Safe twice, and on NULL
    pole_config_destroy (&config);
    pole_config_destroy (NULL);
}


//  --------------------------------------------------------------------------
//  With no daemon and no programme group, every default applies.

static void
test_defaults_when_groups_missing (void **state)
{
    (void) state;
    pole_config_t *config = s_expect_loaded (S_ONE_PAYS);

    pole_params_t defaults;
    pole_params_defaults (&defaults);
    const pole_params_t *params = pole_config_params (config);
    assert_int_equal (params->study_cap_eur, defaults.study_cap_eur);
    assert_int_equal (params->max_posts, defaults.max_posts);
    assert_int_equal (params->post_eur_per_year, defaults.post_eur_per_year);
    assert_int_equal (params->funding_years, defaults.funding_years);
    assert_int_equal (params->live_per_pays, defaults.live_per_pays);
    //  ... which are the sheet's values
    assert_int_equal (params->study_cap_eur, 25000);
    assert_int_equal (params->max_posts, 2);
    assert_int_equal (params->post_eur_per_year, 35000);
    assert_int_equal (params->funding_years, 3);
    assert_int_equal (params->live_per_pays, 1);

    assert_string_equal (pole_config_endpoint (config), "tcp://127.0.0.1:5570");
    assert_string_equal (pole_config_database (config),
                         "/var/lib/pole/pole.db");
    assert_int_equal (pole_config_max_message_size (config), 65536);
    assert_int_equal (pole_config_batch_max (config), 256);

    assert_int_equal (params->territory_count, 1);
    assert_string_equal (params->territories [0].name, "Brest");
    assert_int_equal (params->territories [0].departement, 29);
    pole_config_destroy (&config);
}


//  --------------------------------------------------------------------------
//  Settings left out of a group that is there keep their defaults; empty
//  groups are fine.

static void
test_defaults_within_group (void **state)
{
    (void) state;
    pole_config_t *config = s_expect_loaded (
        "daemon = { batch_max = 10; };\n"
        "programme = { max_posts = 1; };\n"
        S_ONE_PAYS);
    const pole_params_t *params = pole_config_params (config);
    assert_int_equal (pole_config_batch_max (config), 10);
    assert_int_equal (pole_config_max_message_size (config), 65536);
    assert_string_equal (pole_config_endpoint (config), "tcp://127.0.0.1:5570");
    assert_int_equal (params->max_posts, 1);
    assert_int_equal (params->study_cap_eur, 25000);
    assert_int_equal (params->funding_years, 3);
    pole_config_destroy (&config);

    config = s_expect_loaded ("daemon = {};\nprogramme = {};\n" S_ONE_PAYS);
    assert_int_equal (pole_config_params (config)->max_posts, 2);
    pole_config_destroy (&config);
}


//  --------------------------------------------------------------------------
//  Every setting read, at the bounds of its range; 64-bit literals are
//  accepted for whole numbers.

static void
test_every_setting_read (void **state)
{
    (void) state;
    pole_config_t *config = s_expect_loaded (
        "territories = (\n"
        "  { departement = 56; name = \"Vannes\"; },\n"
        "  { name = \"Pays de Lorient\"; departement = 56; }\n"
        ");\n"
        "programme = {\n"
        "  study_cap_eur = 30000L;\n"
        "  max_posts = 10;\n"
        "  post_eur_per_year = 1;\n"
        "  funding_years = 1;\n"
        "  live_dossiers_per_pays = 3;\n"
        "};\n"
        "daemon = {\n"
        "  endpoint = \"tcp://127.0.0.1:6000,ipc:///tmp/pole.sock\";\n"
        "  database = \"/tmp/pole.db\";\n"
        "  max_message_size = 16777216;\n"
        "  batch_max = 10000;\n"
        "};\n");
    const pole_params_t *params = pole_config_params (config);
    assert_int_equal (params->study_cap_eur, 30000);
    assert_int_equal (params->max_posts, 10);
    assert_int_equal (params->post_eur_per_year, 1);
    assert_int_equal (params->funding_years, 1);
    assert_int_equal (params->live_per_pays, 3);
    assert_string_equal (pole_config_endpoint (config),
                         "tcp://127.0.0.1:6000,ipc:///tmp/pole.sock");
    assert_string_equal (pole_config_database (config), "/tmp/pole.db");
    assert_int_equal (pole_config_max_message_size (config), 16777216);
    assert_int_equal (pole_config_batch_max (config), 10000);
    assert_int_equal (params->territory_count, 2);
    assert_string_equal (params->territories [0].name, "Vannes");
    assert_string_equal (params->territories [1].name, "Pays de Lorient");
    assert_int_equal (params->territories [1].departement, 56);
    pole_config_destroy (&config);

    //  And the lower bounds
    config = s_expect_loaded (
        "daemon = { max_message_size = 1024; batch_max = 1; };\n"
        "programme = { max_posts = 1; funding_years = 3; };\n"
        S_ONE_PAYS);
    assert_int_equal (pole_config_max_message_size (config), 1024);
    assert_int_equal (pole_config_batch_max (config), 1);
    pole_config_destroy (&config);
}


//  --------------------------------------------------------------------------
//  A file that does not parse: libconfig's line and reason.

static void
test_syntax_error (void **state)
{
    (void) state;
    //  A doubled "=" on line 3
    s_expect_refused (
        "# a comment\n"
        "daemon = { batch_max = 10; };\n"
        "programme = { max_posts = = 1; };\n"
        S_ONE_PAYS, 3, "syntax error");
    //  Missing comma between two territories
    s_expect_refused (
        "territories = (\n"
        "  { name = \"Brest\"; departement = 29; }\n"
        "  { name = \"Morlaix\"; departement = 29; }\n"
        ");\n", 3, "syntax error");
    //  A setting without a value
    s_expect_refused (
        "daemon = {\n"
        "  endpoint = ;\n"
        "};\n", 2, "syntax error");
    //  The same setting twice
    s_expect_refused (
        "programme = {\n"
        "  max_posts = 1;\n"
        "  max_posts = 2;\n"
        "};\n" S_ONE_PAYS, 3, "duplicate");
}


//  --------------------------------------------------------------------------
//  A file that cannot be read: no line applies.

static void
test_missing_file (void **state)
{
    (void) state;
    char path [PATH_MAX];
    snprintf (path, sizeof path, "%s/no-such-file.cfg", s_dir);
    char error [512] = "";
    pole_config_t *config = pole_config_load (path, error, sizeof error);
    assert_null (config);
    char prefix [PATH_MAX + 8];
    snprintf (prefix, sizeof prefix, "%s: ", path);
    assert_int_equal (strncmp (error, prefix, strlen (prefix)), 0);
    assert_non_null (strstr (error, "No such file"));

    //  A NULL or too small error buffer must not break anything
    assert_null (pole_config_load (path, NULL, 0));
    char tiny [4];
    assert_null (pole_config_load (path, tiny, sizeof tiny));
    assert_int_equal (strlen (tiny), 3);
}


//  --------------------------------------------------------------------------
//  Unknown settings, at every level: a typo must not fall back to a default

//  --------------------------------------------------------------------------
//  Roles: the shipped names, every other actor a holder, bad lists refused

static void
test_roles (void **state)
{
    (void) state;
    char error [512];
    char path [1024];
    const char *source = getenv ("POLE_SOURCE_DIR");
    snprintf (path, sizeof path, "%s/config/poled.cfg", source? source: ".");
    pole_config_t *config = pole_config_load (path, error, sizeof error);
    assert_non_null (config);
    assert_string_equal (pole_config_role (config, "region"), "region");
    assert_string_equal (pole_config_role (config, "admin"), "admin");
    assert_string_equal (pole_config_role (config, "cres"), "cres");
    assert_string_equal (pole_config_role (config, "Collectif ESS"), "holder");
    assert_string_equal (pole_config_role (config, NULL), "holder");
    pole_config_destroy (&config);
    s_expect_refused (
        S_ONE_PAYS
        "roles = {\n"
        "  region = [ \"a\" ];\n"
        "  mayor = [ \"b\" ];\n"
        "};\n", 4, "unknown setting roles.mayor");
    s_expect_refused (
        S_ONE_PAYS
        "roles = {\n"
        "  region = [ \"a\" ];\n"
        "  admin = [ \"a\" ];\n"
        "};\n", 4, "actor \"a\" is given the roles region and admin");
    s_expect_refused (
        S_ONE_PAYS
        "roles = {\n"
        "  region = \"a\";\n"
        "};\n", 3, "roles: region must be an array of actor names");
}

static void
test_unknown_setting (void **state)
{
    (void) state;
    s_expect_refused (
        S_ONE_PAYS
        "programe = { max_posts = 1; };\n", 2, "unknown setting programe");
    s_expect_refused (
        "daemon = {\n"
        "  endpoint = \"tcp://127.0.0.1:5570\";\n"
        "  batchmax = 10;\n"
        "};\n" S_ONE_PAYS, 3, "unknown setting daemon.batchmax");
    s_expect_refused (
        S_ONE_PAYS
        "programme = {\n"
        "  study_cap_eur = 25000;\n"
        "\n"
        "  max_post = 3;\n"
        "};\n", 5, "unknown setting programme.max_post");
    s_expect_refused (
        "territories = (\n"
        "  { name = \"Brest\"; departement = 29; },\n"
        "  { name = \"Morlaix\";\n"
        "    department = 29; }\n"
        ");\n", 4, "unknown setting department");
}


//  --------------------------------------------------------------------------
//  Wrong types: a string for a number, a decimal for a whole number, a
//  scalar for a group, a group for the list...

typedef struct {
    const char *text;
    int line;
    const char *needle;
} s_case_t;

static void
test_wrong_type (void **state)
{
    (void) state;
    const s_case_t cases [] = {
        { "daemon = { endpoint = 5570; };\n" S_ONE_PAYS, 1,
          "daemon.endpoint must be a string" },
        { "daemon = { database = true; };\n" S_ONE_PAYS, 1,
          "daemon.database must be a string" },
        { "daemon = {\n max_message_size = \"65536\"; };\n" S_ONE_PAYS, 2,
          "daemon.max_message_size must be a whole number" },
        { "daemon = { batch_max = 2.5; };\n" S_ONE_PAYS, 1,
          "daemon.batch_max must be a whole number" },
        { "\nprogramme = { study_cap_eur = 25000.0; };\n" S_ONE_PAYS, 2,
          "programme.study_cap_eur must be a whole number" },
        { "programme = { max_posts = \"2\"; };\n" S_ONE_PAYS, 1,
          "programme.max_posts must be a whole number" },
        { "programme = { post_eur_per_year = [35000]; };\n" S_ONE_PAYS, 1,
          "programme.post_eur_per_year must be a whole number" },
        { "programme = { funding_years = true; };\n" S_ONE_PAYS, 1,
          "programme.funding_years must be a whole number" },
        { "programme = { live_dossiers_per_pays = 1.0; };\n" S_ONE_PAYS, 1,
          "programme.live_dossiers_per_pays must be a whole number" },
        { "daemon = \"tcp://127.0.0.1:5570\";\n" S_ONE_PAYS, 1,
          "daemon must be a group" },
        { S_ONE_PAYS "programme = ( 1, 2 );\n", 2,
          "programme must be a group" },
        { "territories = { name = \"Brest\"; departement = 29; };\n", 1,
          "territories must be a list" },
        { "territories = [ \"Brest\", \"Morlaix\" ];\n", 1,
          "territories must be a list" },
        //  One line: libconfig dates a scalar in a list from the token
        //  after it, which may be on the next line
        { "territories = ( \"Brest\" );\n", 1,
          "entry 1 must be a group" },
        { "territories = (\n  { name = 29; departement = 29; }\n);\n", 2,
          "name must be a string" },
        { "territories = (\n"
          "  { name = \"Brest\"; departement = \"29\"; }\n);\n",
          2, "departement must be a whole number" },
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases [0]; index++)
        s_expect_refused (cases [index].text, cases [index].line,
                          cases [index].needle);
}


//  --------------------------------------------------------------------------
//  Each numeric setting, just out of its range on either side.

static void
test_out_of_range (void **state)
{
    (void) state;
    const s_case_t cases [] = {
        { "daemon = {\n  max_message_size = 1023;\n};\n" S_ONE_PAYS, 2,
          "daemon.max_message_size must be a whole number from 1024 to "
          "16777216 (found 1023)" },
        { "daemon = {\n  max_message_size = 16777217;\n};\n" S_ONE_PAYS, 2,
          "(found 16777217)" },
        { "daemon = {\n  batch_max = 0;\n};\n" S_ONE_PAYS, 2,
          "daemon.batch_max must be a whole number from 1 to 10000 "
          "(found 0)" },
        { "daemon = {\n  batch_max = 10001;\n};\n" S_ONE_PAYS, 2,
          "(found 10001)" },
        { "programme = {\n  study_cap_eur = 0;\n};\n" S_ONE_PAYS, 2,
          "programme.study_cap_eur must be a whole number from 1" },
        { "programme = {\n  study_cap_eur = -25000;\n};\n" S_ONE_PAYS, 2,
          "(found -25000)" },
        { "programme = {\n  study_cap_eur = 2000000000000L;\n};\n" S_ONE_PAYS,
          2, "(found 2000000000000)" },
        { "programme = {\n  max_posts = 0;\n};\n" S_ONE_PAYS, 2,
          "programme.max_posts must be a whole number from 1 to 10 "
          "(found 0)" },
        { "programme = {\n  max_posts = 11;\n};\n" S_ONE_PAYS, 2,
          "(found 11)" },
        { "programme = {\n  post_eur_per_year = 0;\n};\n" S_ONE_PAYS, 2,
          "programme.post_eur_per_year must be a whole number from 1" },
        { "programme = {\n  post_eur_per_year = -1;\n};\n" S_ONE_PAYS, 2,
          "(found -1)" },
        { "programme = {\n  funding_years = 0;\n};\n" S_ONE_PAYS, 2,
          "programme.funding_years must be a whole number from 1 to 3 "
          "(found 0)" },
        { "programme = {\n  funding_years = 4;\n};\n" S_ONE_PAYS, 2,
          "(found 4)" },
        { "programme = {\n  live_dossiers_per_pays = 0;\n};\n" S_ONE_PAYS, 2,
          "programme.live_dossiers_per_pays must be a whole number at "
          "least 1 (found 0)" },
        { "territories = (\n"
          "  { name = \"Brest\";\n    departement = 0; }\n);\n",
          3, "departement must be a whole number at least 1 (found 0)" },
        { "territories = (\n"
          "  { name = \"Brest\";\n    departement = -29; }\n);\n",
          3, "(found -29)" },
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases [0]; index++)
        s_expect_refused (cases [index].text, cases [index].line,
                          cases [index].needle);
}


//  --------------------------------------------------------------------------
//  The daemon's strings must say something.

static void
test_bad_strings (void **state)
{
    (void) state;
    s_expect_refused ("daemon = {\n  endpoint = \"\";\n};\n" S_ONE_PAYS, 2,
                      "daemon.endpoint must not be empty");
    s_expect_refused ("daemon = {\n  database = \"\";\n};\n" S_ONE_PAYS, 2,
                      "daemon.database must not be empty");
    s_expect_refused ("daemon = {\n  endpoint = \"tcp://127.0.0.1:1,\";\n};\n"
                      S_ONE_PAYS, 2, "empty item");
    s_expect_refused ("daemon = {\n  endpoint = \"tcp://a:1,,tcp://b:2\";\n};\n"
                      S_ONE_PAYS, 2, "empty item");
}


//  --------------------------------------------------------------------------
//  territories: required, not empty.

static void
test_missing_territories (void **state)
{
    (void) state;
    //  No line applies: the setting is not there at all
    s_expect_refused ("daemon = { batch_max = 10; };\n", 0,
                      "territories is required");
    s_expect_refused ("", 0, "territories is required");
}

static void
test_empty_territories (void **state)
{
    (void) state;
    s_expect_refused ("daemon = { batch_max = 10; };\n"
                      "territories = ( );\n", 2, "territories is empty");
}


//  --------------------------------------------------------------------------
//  Each territory: a name (not blank) and a département.

static void
test_territory_without_name (void **state)
{
    (void) state;
    s_expect_refused ("territories = (\n"
                      "  { name = \"Brest\"; departement = 29; },\n"
                      "  { departement = 29; }\n"
                      ");\n", 3, "entry 2 has no name");
    s_expect_refused ("territories = (\n"
                      "  { name = \"\"; departement = 29; }\n"
                      ");\n", 2, "name must not be empty");
    s_expect_refused ("territories = (\n"
                      "  { name = \"   \"; departement = 29; }\n"
                      ");\n", 2, "name must not be empty");
    s_expect_refused ("territories = (\n"
                      "  { name = \"Bre\\nst\"; departement = 29; }\n"
                      ");\n", 2, "control characters");
    char text [1024];
    char long_name [POLE_NAME_MAX + 1];
    memset (long_name, 'x', POLE_NAME_MAX);
    long_name [POLE_NAME_MAX] = 0;
    snprintf (text, sizeof text, "territories = (\n"
              "  { name = \"%s\"; departement = 29; }\n);\n", long_name);
    s_expect_refused (text, 2, "at most 255");
}

static void
test_territory_without_departement (void **state)
{
    (void) state;
    s_expect_refused ("territories = (\n"
                      "  { name = \"Brest\"; departement = 29; },\n"
                      "  { name = \"Morlaix\"; }\n"
                      ");\n", 3, "(Morlaix) has no departement");
}


//  --------------------------------------------------------------------------
//  Two names the forgiving comparison takes for one Pays.

static void
test_duplicate_pays (void **state)
{
    (void) state;
    s_expect_refused ("territories = (\n"
                      "  { name = \"Dinan\"; departement = 22; },\n"
                      "  { name = \"Brest\"; departement = 29; },\n"
                      "  { name = \"Pays de Dinan\"; departement = 22; }\n"
                      ");\n", 4,
                      "\"Pays de Dinan\" names the same Pays as \"Dinan\" "
                      "(line 2)");
    s_expect_refused ("territories = (\n"
                      "  { name = \"Brest\"; departement = 29; },\n"
                      "  { name = \"BREST\"; departement = 29; }\n"
                      ");\n", 3, "same Pays");
    //  Accents and hyphens are forgiven too (pole_pays_lookup's contract)
    s_expect_refused ("territories = (\n"
                      "  { name = \"Trégor-Goëlo\"; departement = 22; },\n"
                      "  { name = \"Tregor Goelo\"; departement = 22; }\n"
                      ");\n", 3, "same Pays");
}


int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_shipped_config),
        cmocka_unit_test (test_defaults_when_groups_missing),
        cmocka_unit_test (test_defaults_within_group),
        cmocka_unit_test (test_every_setting_read),
        cmocka_unit_test (test_syntax_error),
        cmocka_unit_test (test_missing_file),
        cmocka_unit_test (test_unknown_setting),
        cmocka_unit_test (test_roles),
        cmocka_unit_test (test_wrong_type),
        cmocka_unit_test (test_out_of_range),
        cmocka_unit_test (test_bad_strings),
        cmocka_unit_test (test_missing_territories),
        cmocka_unit_test (test_empty_territories),
        cmocka_unit_test (test_territory_without_name),
        cmocka_unit_test (test_territory_without_departement),
        cmocka_unit_test (test_duplicate_pays),
    };
    return cmocka_run_group_tests_name ("pole_config", tests,
                                        s_group_setup, s_group_teardown);
}

/*  Outbox tests: routing (who follows what) and digest due times. That the
    rows are written in the event's transaction is tested in test_store.c,
    delivery in tests/integration/test_notify.py.                          */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "outbox.h"

static void
test_follows (void **state)
{
    (void) state;
    char *pays[] = {"Rennes"};
    int departements[] = {35};
    char *events[] = {"grant_posts", "close"};
    char *holders[] = {"CADES"};
    pole_coordinator_t all = {.name = "CRES"};
    assert_true (pole_coordinator_follows (&all, "Brest", 29, "x", "note"));

    pole_coordinator_t by_pays = {.name = "a", .pays = pays, .pays_count = 1};
    assert_true (pole_coordinator_follows (&by_pays, "Rennes", 35, "x", "open"));
    assert_false (pole_coordinator_follows (&by_pays, "Brest", 29, "x", "open"));

    pole_coordinator_t by_dep = {.name = "b", .departements = departements,
                                 .departement_count = 1};
    assert_true (pole_coordinator_follows (&by_dep, "Fougères", 35, "x", "open"));
    assert_false (pole_coordinator_follows (&by_dep, "Vannes", 56, "x", "open"));

    pole_coordinator_t by_event = {.name = "c", .events = events,
                                   .event_count = 2};
    assert_true (pole_coordinator_follows (&by_event, "Vannes", 56, "x", "close"));
    assert_false (pole_coordinator_follows (&by_event, "Vannes", 56, "x", "note"));

    //  Every given filter must match
    pole_coordinator_t both = {.name = "d", .departements = departements,
                               .departement_count = 1, .holders = holders,
                               .holder_count = 1};
    assert_true (pole_coordinator_follows (&both, "Redon et Vilaine", 35,
                                           "CADES", "note"));
    assert_false (pole_coordinator_follows (&both, "Redon et Vilaine", 35,
                                            "Other", "note"));
    assert_false (pole_coordinator_follows (&both, "Vannes", 56, "CADES",
                                            "note"));
}

static void
test_digest_due (void **state)
{
    (void) state;
    pole_notify_config_t notify = {.digest_hour = 18};
    //  2010-10-15T10:00:00Z -> 18:00 the same day
    int64_t ten = INT64_C (1287136800000);
    assert_int_equal (pole_outbox_digest_due (&notify, ten),
                      ten + 8 * 3600000);
    //  19:00 -> 18:00 the next day
    int64_t nineteen = ten + 9 * 3600000;
    assert_int_equal (pole_outbox_digest_due (&notify, nineteen),
                      ten + 32 * 3600000);
    //  exactly 18:00 -> the next day: strictly after
    assert_int_equal (pole_outbox_digest_due (&notify, ten + 8 * 3600000),
                      ten + 32 * 3600000);
    //  Every N seconds: all rows of one window share one due time
    notify.digest_every_s = 2;
    assert_int_equal (pole_outbox_digest_due (&notify, 10000), 12000);
    assert_int_equal (pole_outbox_digest_due (&notify, 11999), 12000);
    assert_int_equal (pole_outbox_digest_due (&notify, 12000), 14000);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_follows),
        cmocka_unit_test (test_digest_due),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}

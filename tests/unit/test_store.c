/* test_store.c - the task store in-process: the life of a task in the database and
 * its files, a crash's recovery, expiry, and who sees what. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "store.h"

/* A fresh state folder per test, removed after. */
typedef struct fixture {
    char dir[64];
    store *st;
} fixture;

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    char *why = NULL;

    snprintf(f->dir, sizeof(f->dir), "/tmp/imgproc-store.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->st = store_open(f->dir, &why);
    if (!f->st)
        fail_msg("store_open: %s", why);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];

    store_close(f->st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static int
file_exists(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0;
}

/* A queued task of owner with a small input file; its id. */
static uint64_t
add_task(store *st, const char *owner, const char *token)
{
    static const char image[] = "not really an image, but bytes on disk";
    store_task t;
    char temp[4096], *why = NULL;

    memset(&t, 0, sizeof(t));
    snprintf(t.owner, sizeof(t.owner), "%s", owner);
    snprintf(t.token, sizeof(t.token), "%s", token);
    snprintf(t.steps, sizeof(t.steps), "grayscale");
    t.state = IP_TASK_QUEUED;
    t.size = sizeof(image);
    t.created = t.queued = 1000;
    if (store_write_temp(st, image, sizeof(image), 1, temp, sizeof(temp), &why))
        fail_msg("store_write_temp: %s", why);
    if (store_begin(st, &why) || store_add(st, &t, temp, &why) || store_commit(st, 1, &why))
        fail_msg("adding a task: %s", why);
    assert_true(t.id > 0);
    return t.id;
}

/* QUEUED -> RUNNING (claim) -> DONE (finish), its input and result on disk. */
static void
life_of_a_task(void **state)
{
    fixture *f = *state;
    store_task t, got;
    char path[4096], temp[4096], *why = NULL;
    uint64_t id = add_task(f->st, "1@a", "");

    store_path(f->st, STORE_INPUT, id, path, sizeof(path));
    assert_true(file_exists(path));
    assert_int_equal(store_count(f->st, IP_TASK_QUEUED), 1);
    assert_int_equal(store_claim(f->st, 1001, &t, &why), 1);
    assert_int_equal(t.id, id);
    assert_int_equal(t.state, IP_TASK_RUNNING);
    assert_int_equal(t.attempts, 1);
    assert_int_equal(store_claim(f->st, 1001, &got, &why), 0);     /* nothing else queued */

    assert_int_equal(store_write_temp(f->st, "RESULT", 6, 1, temp, sizeof(temp), &why), 0);
    t.result_size = 6;
    t.result_format = IP_FMT_PNG;
    t.width = 3;
    t.height = 2;
    t.bands = 1;
    t.state = IP_TASK_DONE;
    assert_int_equal(store_finish(f->st, id, &t, temp, 1002, 1002 + 60, &why), 1);
    assert_int_equal(store_get(f->st, id, &got, &why), 1);
    assert_int_equal(got.state, IP_TASK_DONE);
    assert_int_equal(got.result_size, 6);
    assert_int_equal(got.width, 3);
    assert_true(got.finished == 1002 && got.expires == 1062);
    store_path(f->st, STORE_RESULT, id, path, sizeof(path));
    assert_true(file_exists(path));
    /* A finished task does not move back. */
    assert_int_equal(store_move(f->st, id, 1u << IP_TASK_QUEUED, IP_TASK_CANCELLED, 1003, 0,
                                &why), 0);
}

/* A worker that died mid-task: at the next start the task is queued again,
 * its attempt counted; after max_attempts crashes it fails instead. */
static void
recovery_after_a_crash(void **state)
{
    fixture *f = *state;
    store_task t, got;
    char *why = NULL;
    int requeued, failed;
    uint64_t id = add_task(f->st, "1@a", "");

    for (int crash = 1; crash <= 3; crash++) {
        assert_int_equal(store_claim(f->st, 1000 + crash, &t, &why), 1);
        assert_int_equal(t.attempts, crash);
        /* The process dies here; the next one opens the same folder. */
        store_close(f->st);
        f->st = store_open(f->dir, &why);
        assert_non_null(f->st);
        assert_int_equal(store_recover(f->st, 3, 2000, 2060, &requeued, &failed, &why), 0);
        assert_int_equal(store_get(f->st, id, &got, &why), 1);
        if (crash < 3) {
            assert_int_equal(requeued, 1);
            assert_int_equal(got.state, IP_TASK_QUEUED);
        } else {
            assert_int_equal(failed, 1);
            assert_int_equal(got.state, IP_TASK_FAILED);
            assert_true(got.expires == 2060);
        }
    }
}

/* Tokens are per owner; listing shows an owner its own tasks only. */
static void
owners_and_tokens(void **state)
{
    fixture *f = *state;
    store_task t, list[8];
    char *why = NULL;
    int more;
    uint64_t a = add_task(f->st, "1@a", "first");
    uint64_t b = add_task(f->st, "2@b", "first");

    add_task(f->st, "1@a", "second");
    assert_int_equal(store_by_token(f->st, "1@a", "first", &t, &why), 1);
    assert_int_equal(t.id, a);
    assert_int_equal(store_by_token(f->st, "2@b", "first", &t, &why), 1);
    assert_int_equal(t.id, b);
    assert_int_equal(store_by_token(f->st, "3@c", "first", &t, &why), 0);
    assert_int_equal(store_list(f->st, "1@a", 0, 0, list, 8, &more, &why), 2);
    assert_int_equal(more, 0);
    assert_string_equal(list[0].token, "first");
    assert_string_equal(list[1].token, "second");
    assert_int_equal(store_list(f->st, "1@a", 0, 0, list, 1, &more, &why), 1);
    assert_int_equal(more, 1);
}

/* Expired tasks go, with their files; the next expiry is reported. */
static void
expiry_sweeps(void **state)
{
    fixture *f = *state;
    store_task got;
    char path[4096], *why = NULL;
    double when;
    uint64_t a = add_task(f->st, "1@a", ""), b = add_task(f->st, "1@a", "");

    assert_int_equal(store_move(f->st, a, 1u << IP_TASK_QUEUED, IP_TASK_CANCELLED, 1100, 1200,
                                &why), 1);
    assert_int_equal(store_move(f->st, b, 1u << IP_TASK_QUEUED, IP_TASK_CANCELLED, 1100, 1300,
                                &why), 1);
    assert_int_equal(store_next_expiry(f->st, &when), 1);
    assert_true(when == 1200);
    assert_int_equal(store_sweep(f->st, 1250, &why), 1);
    assert_int_equal(store_get(f->st, a, &got, &why), 0);
    store_path(f->st, STORE_INPUT, a, path, sizeof(path));
    assert_false(file_exists(path));
    assert_int_equal(store_get(f->st, b, &got, &why), 1);
    assert_int_equal(store_delete(f->st, b, &why), 1);
    assert_int_equal(store_delete(f->st, b, &why), 0);
    assert_int_equal(store_next_expiry(f->st, &when), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(life_of_a_task, setup, teardown),
        cmocka_unit_test_setup_teardown(recovery_after_a_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(owners_and_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(expiry_sweeps, setup, teardown),
    };

    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The message pool (msgr/src/msg_pool.c): size classes, reuse, the bound on
 * what it keeps, trimming, and messages allocated on one thread and
 * released on another. Labelled posix (real threads), so it also runs under
 * ThreadSanitizer; under AddressSanitizer the pool is off by default and
 * these tests switch it on, which also checks that pooled blocks are
 * poisoned.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "msgr_internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

static int
setup(void **state)
{
    (void)state;
    msgr__msg_pool_set_enabled(1);
    msgr_msg_pool_trim();
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    msgr_msg_pool_trim();
    return 0;
}

static void
assert_all_empty(void)
{
    for (int c = 0; c < MSGR_MSG_POOL_NCLASS; c++)
        assert_int_equal(msgr__msg_pool_count(c), 0);
}

/* The pool is on by default, except under ASan where plain malloc keeps
 * use-after-free detection. Runs first, before any setup switched it. */
static void
test_default(void **state)
{
    (void)state;
#ifdef TEST_ASAN
    const int want = 0;
#else
    const int want = 1;
#endif
    struct msgr_msg *m = msgr_msg_new(MSGR_MSG_TEST, 16, 0, 0);
    assert_non_null(m);
    msgr_msg_unref(m);
    assert_int_equal(msgr__msg_pool_count(MSGR_MSG_POOL_64),
                     (unsigned)want);
    assert_int_equal(msgr__msg_pool_set_enabled(want), want);
    msgr_msg_pool_trim();
    assert_all_empty();
}

struct class_case {
    uint32_t front, middle, data;
    enum msgr__msg_pool_class cls;
};

static const struct class_case class_cases[] = {
    {0, 0, 0, MSGR_MSG_POOL_EMPTY},
    {1, 0, 0, MSGR_MSG_POOL_64},
    {32, 16, 16, MSGR_MSG_POOL_64},
    {65, 0, 0, MSGR_MSG_POOL_256},
    {100, 100, 56, MSGR_MSG_POOL_256},
    {0, 0, 257, MSGR_MSG_POOL_4K},
    {16, 0, 4080, MSGR_MSG_POOL_4K},
    {0, 0, 4097, MSGR_MSG_POOL_64K},
    {512, 0, 65024, MSGR_MSG_POOL_64K},
    {0, 0, 65537, MSGR_MSG_POOL_NONE},
    {0, 1, 1u << 20, MSGR_MSG_POOL_NONE},
};

/* Each length lands in its class, the three buffers are laid out back to
 * back and every byte of them is writable (ASan checks the bounds). */
static void
test_classes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(class_cases) / sizeof(class_cases[0]);
         i++) {
        const struct class_case *k = &class_cases[i];
        struct msgr_msg *m =
            msgr_msg_new(MSGR_MSG_TEST + 1, k->front, k->middle, k->data);
        assert_non_null(m);
        assert_int_equal(msgr__msg_pool_class_of(m), k->cls);
        assert_int_equal(m->hdr.type, MSGR_MSG_TEST + 1);
        assert_int_equal(m->front.len, k->front);
        assert_int_equal(m->middle.len, k->middle);
        assert_int_equal(m->data.len, k->data);
        if (k->front && k->middle)
            assert_ptr_equal(m->middle.data, m->front.data + k->front);
        if (k->front)
            memset(m->front.data, 0xa1, k->front);
        if (k->middle)
            memset(m->middle.data, 0xb2, k->middle);
        if (k->data)
            memset(m->data.data, 0xc3, k->data);
        if (k->front)
            assert_int_equal(m->front.data[k->front - 1], 0xa1);
        msgr_msg_unref(m);
        unsigned want = k->cls == MSGR_MSG_POOL_NONE ? 0 : 1;
        if (k->cls != MSGR_MSG_POOL_NONE)
            assert_int_equal(msgr__msg_pool_count(k->cls), want);
        msgr_msg_pool_trim();
    }
    /* the receive path's raw messages use the same classes */
    uint8_t *buf;
    struct msgr_msg *m = msgr__msg_new_raw(3000, &buf);
    assert_non_null(m);
    assert_int_equal(msgr__msg_pool_class_of(m), MSGR_MSG_POOL_4K);
    memset(buf, 0x5a, 3000);
    msgr_msg_unref(m);
    assert_int_equal(msgr__msg_pool_count(MSGR_MSG_POOL_4K), 1);
}

/* A released message's block is the next one of its class, fully reset;
 * another class does not take it. */
static void
test_reuse(void **state)
{
    (void)state;
    struct msgr_msg *a = msgr_msg_new(MSGR_MSG_TEST, 0, 0, 1000);
    assert_non_null(a);
    a->hdr.seq = 42;
    a->hdr.priority = MSGR_PRIO_HIGH;
    a->recv_stamp = 7;
    a->delay_until = 9;
    a->data.data[0] = 0xee;
    msgr_msg_unref(a);
    assert_int_equal(msgr__msg_pool_count(MSGR_MSG_POOL_4K), 1);
#ifdef TEST_ASAN
    /* pooled: the message and its payload are poisoned */
    assert_true(__asan_address_is_poisoned(a));
    assert_true(__asan_address_is_poisoned(&a->hdr.seq));
#endif

    struct msgr_msg *small = msgr_msg_new(MSGR_MSG_TEST, 80, 0, 0);
    assert_ptr_not_equal(small, a);
    assert_int_equal(msgr__msg_pool_count(MSGR_MSG_POOL_4K), 1);

    struct msgr_msg *b = msgr_msg_new(MSGR_MSG_TEST + 2, 0, 0, 4096);
    assert_ptr_equal(b, a);
    assert_int_equal(msgr__msg_pool_count(MSGR_MSG_POOL_4K), 0);
#ifdef TEST_ASAN
    assert_false(__asan_address_is_poisoned(b));
    assert_false(__asan_address_is_poisoned(b->data.data + 4095));
#endif
    assert_int_equal(b->hdr.seq, 0);
    assert_int_equal(b->hdr.type, MSGR_MSG_TEST + 2);
    assert_int_equal(b->hdr.priority, MSGR_PRIO_DEFAULT);
    assert_int_equal(b->hdr.version, 1);
    assert_int_equal(b->recv_stamp, 0);
    assert_int_equal(b->delay_until, 0);
    assert_null(b->conn);
    assert_null(b->throttle);
    assert_null(b->next);
    assert_null(b->front.data);
    assert_int_equal(b->data.len, 4096);
    memset(b->data.data, 0, 4096); /* the whole class size is ours */

    /* refcounting: only the last unref pools it */
    msgr_msg_ref(b);
    msgr_msg_unref(b);
    assert_int_equal(msgr__msg_pool_count(MSGR_MSG_POOL_4K), 0);
    msgr_msg_unref(b);
    assert_int_equal(msgr__msg_pool_count(MSGR_MSG_POOL_4K), 1);
    msgr_msg_unref(small);
    assert_int_equal(msgr__msg_pool_count(MSGR_MSG_POOL_256), 1);
}

/* The pool keeps at most keep_max blocks per class; trim gives all back. */
static void
test_bound_and_trim(void **state)
{
    (void)state;
    unsigned keep = msgr__msg_pool_keep_max(MSGR_MSG_POOL_256);
    unsigned n = keep + 10;
    struct msgr_msg **v = test_malloc(sizeof(*v) * n);
    for (unsigned i = 0; i < n; i++) {
        v[i] = msgr_msg_new(MSGR_MSG_TEST, 100, 0, 0);
        assert_non_null(v[i]);
    }
    for (unsigned i = 0; i < n; i++)
        msgr_msg_unref(v[i]);
    assert_int_equal(msgr__msg_pool_count(MSGR_MSG_POOL_256), keep);
    /* the pooled ones are handed out again, then fresh ones */
    for (unsigned i = 0; i < n; i++)
        v[i] = msgr_msg_new(MSGR_MSG_TEST, 0, 0, 200);
    assert_int_equal(msgr__msg_pool_count(MSGR_MSG_POOL_256), 0);
    for (unsigned i = 0; i < n; i++)
        msgr_msg_unref(v[i]);
    test_free(v);
    msgr_msg_pool_trim();
    assert_all_empty();

    /* switched off: released messages are freed, not kept */
    msgr__msg_pool_set_enabled(0);
    struct msgr_msg *m = msgr_msg_new(MSGR_MSG_TEST, 0, 0, 0);
    msgr_msg_unref(m);
    assert_all_empty();
    msgr__msg_pool_set_enabled(1);
}

/* ------------------------------------------------------ across threads */

/*
 * Two pairs of threads: a producer allocates messages of every class and
 * hands them to its consumer through a small queue; the consumer checks
 * the payload, releases the message and allocates a reply that the
 * producer checks and releases. Every block thus changes threads both
 * ways, and both ends allocate and release at once.
 */
#define XT_PAIRS 2
#define XT_MSGS  6000
#define XT_QCAP  32

struct xt_queue {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct msgr_msg *v[XT_QCAP];
    unsigned head, n;
};

struct xt_pair {
    struct xt_queue to_consumer, to_producer;
    unsigned bad;
};

static void
xq_init(struct xt_queue *q)
{
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->cond, NULL);
    q->head = q->n = 0;
}

static void
xq_fini(struct xt_queue *q)
{
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->cond);
}

static void
xq_push(struct xt_queue *q, struct msgr_msg *m)
{
    pthread_mutex_lock(&q->lock);
    while (q->n == XT_QCAP)
        pthread_cond_wait(&q->cond, &q->lock);
    q->v[(q->head + q->n) % XT_QCAP] = m;
    q->n++;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

static struct msgr_msg *
xq_pop(struct xt_queue *q)
{
    pthread_mutex_lock(&q->lock);
    while (q->n == 0)
        pthread_cond_wait(&q->cond, &q->lock);
    struct msgr_msg *m = q->v[q->head];
    q->head = (q->head + 1) % XT_QCAP;
    q->n--;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
    return m;
}

static const uint32_t xt_sizes[] = {0, 24, 256, 1000, 4096, 9000, 65536, 70000};
#define XT_NSIZES (sizeof(xt_sizes) / sizeof(xt_sizes[0]))

/* A message whose tid and every payload byte derive from i. */
static struct msgr_msg *
xt_make(uint32_t i, uint32_t salt)
{
    uint32_t len = xt_sizes[(i + salt) % XT_NSIZES];
    struct msgr_msg *m = msgr_msg_new(MSGR_MSG_TEST, 0, 0, len);
    if (!m)
        return NULL;
    m->hdr.tid = i;
    for (uint32_t k = 0; k < len; k++)
        m->data.data[k] = (uint8_t)(i * 31 + k + salt);
    return m;
}

static int
xt_check(const struct msgr_msg *m, uint32_t i, uint32_t salt)
{
    uint32_t len = xt_sizes[(i + salt) % XT_NSIZES];
    if (m->hdr.tid != i || m->data.len != len)
        return 0;
    for (uint32_t k = 0; k < len; k++)
        if (m->data.data[k] != (uint8_t)(i * 31 + k + salt))
            return 0;
    return 1;
}

static void *
xt_consumer(void *arg)
{
    struct xt_pair *p = arg;
    for (uint32_t i = 0; i < XT_MSGS; i++) {
        struct msgr_msg *m = xq_pop(&p->to_consumer);
        if (!xt_check(m, i, 0))
            p->bad++;
        msgr_msg_unref(m);
        struct msgr_msg *r = xt_make(i, 3);
        if (!r)
            p->bad++;
        else
            xq_push(&p->to_producer, r);
    }
    return NULL;
}

static void *
xt_producer(void *arg)
{
    struct xt_pair *p = arg;
    uint32_t sent = 0, got = 0;
    /* keep up to half a queue in flight so both directions overlap */
    while (got < XT_MSGS) {
        while (sent < XT_MSGS && sent - got < XT_QCAP / 2) {
            struct msgr_msg *m = xt_make(sent, 0);
            if (!m) {
                p->bad++;
                return NULL;
            }
            xq_push(&p->to_consumer, m);
            sent++;
        }
        struct msgr_msg *r = xq_pop(&p->to_producer);
        if (!xt_check(r, got, 3))
            p->bad++;
        msgr_msg_unref(r);
        got++;
    }
    return NULL;
}

static void
test_cross_thread(void **state)
{
    (void)state;
    struct xt_pair pairs[XT_PAIRS];
    pthread_t th[XT_PAIRS][2];
    for (int i = 0; i < XT_PAIRS; i++) {
        memset(&pairs[i], 0, sizeof(pairs[i]));
        xq_init(&pairs[i].to_consumer);
        xq_init(&pairs[i].to_producer);
        assert_int_equal(
            pthread_create(&th[i][0], NULL, xt_producer, &pairs[i]), 0);
        assert_int_equal(
            pthread_create(&th[i][1], NULL, xt_consumer, &pairs[i]), 0);
    }
    for (int i = 0; i < XT_PAIRS; i++) {
        pthread_join(th[i][0], NULL);
        pthread_join(th[i][1], NULL);
    }
    int pooled = 0;
    for (int i = 0; i < XT_PAIRS; i++) {
        assert_int_equal(pairs[i].bad, 0);
        xq_fini(&pairs[i].to_consumer);
        xq_fini(&pairs[i].to_producer);
    }
    for (int c = 0; c < MSGR_MSG_POOL_NCLASS; c++) {
        unsigned n = msgr__msg_pool_count(c);
        assert_true(n <= msgr__msg_pool_keep_max(c));
        pooled += (int)n;
    }
    /* everything was released, so the pool holds what was recycled */
    assert_true(pooled > 0);
    msgr_msg_pool_trim();
    assert_all_empty();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default),
        cmocka_unit_test_setup_teardown(test_classes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_and_trim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cross_thread, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* http_bench.c - onair-http-bench: load for onaird's JSON HTTP API
 * (specs/http-api.md), with libcurl's multi interface on one thread:
 * `concurrency` keep-alive connections, each sending its next request as
 * soon as the previous answer is in (closed loop).
 *
 *   onair-http-bench [--host H] [--port P] --user U --password-file F MODE ...
 *   book          --channels N --per-channel K --start UNIX --slot S [--concurrency C]
 *                 books K consecutive slots on each of the channels ch001..chN
 *                 (channel i's bookings start at UNIX and follow each other),
 *                 all distinct, so every request must answer 201
 *   book-same     --channels N --start UNIX --slot S --rounds R [--concurrency C]
 *                 C requests for the same slot at once, R times: exactly one
 *                 201 per round is expected, the rest 409
 *   availability  --date YYYY-MM-DD --count N [--concurrency C]
 *
 * Prints one JSON line: counts per outcome, elapsed seconds, requests per
 * second, and latency percentiles (ms) from send to complete answer.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct job {
    CURL *h;
    struct curl_slist *hdrs;
    char url[512];
    char body[1024];
    char *resp;
    size_t rlen, rcap;
    double t0;
    long round; /* book-same: the round this request belongs to */
    bool busy;
} job;

typedef struct bench {
    const char *host;
    int port;
    char token[128];
    const char *mode;
    long channels, per_channel, rounds, count;
    long long start, slot;
    const char *date;
    int concurrency;
    long next;       /* next request index */
    long total;
    long ok, conflict, failed;
    long *wins;      /* book-same: 201s per round */
    double *lat;
    long nlat;
    char first_error[300];
} bench;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    job *j = ud;
    size_t len = sz * n;
    if (j->rlen + len + 1 > j->rcap) {
        size_t cap = (j->rlen + len + 1) * 2;
        char *r = realloc(j->resp, cap);
        if (!r)
            return 0;
        j->resp = r;
        j->rcap = cap;
    }
    memcpy(j->resp + j->rlen, p, len);
    j->rlen += len;
    j->resp[j->rlen] = '\0';
    return len;
}

static void iso(long long t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Sets up request number i on j.  Returns false when there is none left. */
static bool prepare(bench *b, job *j, long i)
{
    if (i >= b->total)
        return false;
    j->rlen = 0;
    if (strcmp(b->mode, "availability") == 0) {
        snprintf(j->url, sizeof j->url, "http://%s:%d/api/v1/availability?date=%s", b->host, b->port, b->date);
        curl_easy_setopt(j->h, CURLOPT_HTTPGET, 1L);
    } else {
        long channel, k;
        if (strcmp(b->mode, "book") == 0) {
            /* Interleave channels so that concurrent requests hit different ones. */
            channel = i % b->channels;
            k = i / b->channels;
        } else {
            j->round = i / b->concurrency;
            channel = j->round % b->channels;
            k = j->round / b->channels;
        }
        char s[32], e[32];
        iso(b->start + k * b->slot, s, sizeof s);
        iso(b->start + (k + 1) * b->slot, e, sizeof e);
        snprintf(j->body, sizeof j->body,
                 "{\"channel\":\"ch%03ld\",\"start\":\"%s\",\"end\":\"%s\",\"level\":\"public\","
                 "\"title\":\"Bench live %ld\",\"genre\":\"bench\",\"broadcast_password\":\"cast-pass\","
                 "\"summary\":\"load\",\"friends\":[\"friend@example.com\"]}",
                 channel + 1, s, e, i);
        snprintf(j->url, sizeof j->url, "http://%s:%d/api/v1/reservations", b->host, b->port);
        curl_easy_setopt(j->h, CURLOPT_POSTFIELDS, j->body);
    }
    curl_easy_setopt(j->h, CURLOPT_URL, j->url);
    j->t0 = now_s();
    j->busy = true;
    return true;
}

static void finish(bench *b, job *j, CURLcode rc)
{
    long status = 0;
    curl_easy_getinfo(j->h, CURLINFO_RESPONSE_CODE, &status);
    b->lat[b->nlat++] = (now_s() - j->t0) * 1000.0;
    bool good = rc == CURLE_OK && (status == 200 || status == 201);
    if (good) {
        b->ok++;
        if (b->wins)
            b->wins[j->round]++;
    } else if (rc == CURLE_OK && status == 409) {
        b->conflict++;
    } else {
        b->failed++;
        if (!b->first_error[0])
            snprintf(b->first_error, sizeof b->first_error, "%s / HTTP %ld: %.200s", curl_easy_strerror(rc), status,
                     j->resp ? j->resp : "");
    }
    j->busy = false;
}

static int login(bench *b, const char *user, const char *password)
{
    CURL *h = curl_easy_init();
    job j = {0};
    j.h = h;
    char url[256], body[512];
    snprintf(url, sizeof url, "http://%s:%d/api/v1/session", b->host, b->port);
    json_t *o = json_pack("{s:s, s:s}", "user", user, "password", password);
    char *txt = json_dumps(o, JSON_COMPACT);
    snprintf(body, sizeof body, "%s", txt);
    free(txt);
    json_decref(o);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &j);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    int ret = -1;
    if (rc == CURLE_OK && status == 201) {
        json_t *r = json_loads(j.resp, 0, NULL);
        const char *tok = json_string_value(json_object_get(r, "token"));
        if (tok && strlen(tok) < sizeof b->token) {
            strcpy(b->token, tok);
            ret = 0;
        }
        json_decref(r);
    }
    if (ret != 0)
        fprintf(stderr, "login failed: %s, HTTP %ld: %s\n", curl_easy_strerror(rc), status, j.resp ? j.resp : "");
    free(j.resp);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return ret;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, long n, double p)
{
    if (n == 0)
        return 0;
    long i = (long)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static const char *arg(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return def;
}

int main(int argc, char **argv)
{
    bench b = {0};
    b.host = arg(argc, argv, "--host", "127.0.0.1");
    b.port = atoi(arg(argc, argv, "--port", "5280"));
    const char *user = arg(argc, argv, "--user", NULL);
    const char *pwfile = arg(argc, argv, "--password-file", NULL);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "book") == 0 || strcmp(argv[i], "book-same") == 0 || strcmp(argv[i], "availability") == 0)
            b.mode = argv[i];
    b.channels = atol(arg(argc, argv, "--channels", "100"));
    b.per_channel = atol(arg(argc, argv, "--per-channel", "1000"));
    b.rounds = atol(arg(argc, argv, "--rounds", "100"));
    b.count = atol(arg(argc, argv, "--count", "1000"));
    b.start = atoll(arg(argc, argv, "--start", "0"));
    b.slot = atoll(arg(argc, argv, "--slot", "1800"));
    b.date = arg(argc, argv, "--date", NULL);
    b.concurrency = atoi(arg(argc, argv, "--concurrency", "16"));
    if (!user || !pwfile || !b.mode || b.concurrency < 1 || b.concurrency > 1024 || b.channels < 1 ||
        (strcmp(b.mode, "availability") == 0 && !b.date) || (strcmp(b.mode, "availability") != 0 && b.start <= 0)) {
        fprintf(stderr, "usage: onair-http-bench [--host H] [--port P] --user U --password-file F\n"
                        "  book --channels N --per-channel K --start UNIX --slot S [--concurrency C]\n"
                        "  book-same --channels N --start UNIX --slot S --rounds R [--concurrency C]\n"
                        "  availability --date YYYY-MM-DD --count N [--concurrency C]\n");
        return 2;
    }
    char password[256] = "";
    FILE *pf = fopen(pwfile, "r");
    if (!pf || !fgets(password, sizeof password, pf)) {
        fprintf(stderr, "cannot read %s\n", pwfile);
        return 2;
    }
    fclose(pf);
    password[strcspn(password, "\r\n")] = '\0';

    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (login(&b, user, password) != 0)
        return 1;
    if (strcmp(b.mode, "book") == 0)
        b.total = b.channels * b.per_channel;
    else if (strcmp(b.mode, "book-same") == 0) {
        b.total = b.rounds * b.concurrency;
        b.wins = calloc((size_t)b.rounds, sizeof *b.wins);
    } else
        b.total = b.count;
    b.lat = malloc((size_t)b.total * sizeof *b.lat);

    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)b.concurrency);
    job *jobs = calloc((size_t)b.concurrency, sizeof *jobs);
    char auth[200];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", b.token);
    for (int i = 0; i < b.concurrency; i++) {
        job *j = &jobs[i];
        j->h = curl_easy_init();
        j->hdrs = curl_slist_append(curl_slist_append(NULL, "Content-Type: application/json"), auth);
        curl_easy_setopt(j->h, CURLOPT_HTTPHEADER, j->hdrs);
        curl_easy_setopt(j->h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(j->h, CURLOPT_WRITEDATA, j);
        curl_easy_setopt(j->h, CURLOPT_PRIVATE, j);
        curl_easy_setopt(j->h, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(j->h, CURLOPT_TCP_NODELAY, 1L);
    }
    bool same = strcmp(b.mode, "book-same") == 0;
    double t0 = now_s();
    /* book-same runs round by round: all C requests of a round start together. */
    long round_left = 0;
    for (int i = 0; i < b.concurrency; i++)
        if (prepare(&b, &jobs[i], b.next)) {
            b.next++;
            round_left++;
            curl_multi_add_handle(m, jobs[i].h);
        }
    int running = 1;
    while (running || round_left > 0) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            job *j;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
            CURLcode rc = msg->data.result;
            curl_multi_remove_handle(m, j->h);
            finish(&b, j, rc);
            round_left--;
            if (!same && prepare(&b, j, b.next)) {
                b.next++;
                round_left++;
                curl_multi_add_handle(m, j->h);
            }
        }
        if (same && round_left == 0 && b.next < b.total) {
            for (int i = 0; i < b.concurrency; i++)
                if (prepare(&b, &jobs[i], b.next)) {
                    b.next++;
                    round_left++;
                    curl_multi_add_handle(m, jobs[i].h);
                }
            running = 1;
            continue;
        }
        if (running)
            curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    double elapsed = now_s() - t0;
    qsort(b.lat, (size_t)b.nlat, sizeof *b.lat, cmp_double);
    long rounds_one_winner = 0;
    if (b.wins)
        for (long r = 0; r < b.rounds; r++)
            rounds_one_winner += b.wins[r] == 1;
    json_t *out = json_pack("{s:s, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:i}", "mode", b.mode, "requests",
                            (json_int_t)b.nlat, "ok", (json_int_t)b.ok, "conflict", (json_int_t)b.conflict, "failed",
                            (json_int_t)b.failed, "elapsed_s", elapsed, "per_s", b.nlat / elapsed, "p50_ms",
                            pct(b.lat, b.nlat, 0.50), "p90_ms", pct(b.lat, b.nlat, 0.90), "p99_ms",
                            pct(b.lat, b.nlat, 0.99), "max_ms", b.nlat ? b.lat[b.nlat - 1] : 0.0, "concurrency",
                            b.concurrency);
    if (b.wins)
        json_object_set_new(out, "rounds_with_one_winner", json_integer(rounds_one_winner));
    if (b.first_error[0])
        json_object_set_new(out, "first_error", json_string(b.first_error));
    char *txt = json_dumps(out, JSON_COMPACT);
    printf("%s\n", txt);
    free(txt);
    json_decref(out);
    for (int i = 0; i < b.concurrency; i++) {
        curl_easy_cleanup(jobs[i].h);
        curl_slist_free_all(jobs[i].hdrs);
        free(jobs[i].resp);
    }
    free(jobs);
    free(b.lat);
    free(b.wins);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return b.failed ? 1 : 0;
}

/* web_static.c - the web pages (web_static.h, specs/http-api.md "Web
 * pages"): the files of http.static_dir served over HTTP, and
 * GET /api/v1/server.
 *
 * The folder is read into memory at start-up and on SIGHUP, so answering a
 * page costs no disk access on the loop.  A request is looked up by its exact
 * path among the files read: nothing outside the folder, no hidden file
 * (a name starting with '.') and no directory listing can be reached,
 * whatever the path says ("..", escapes, symbolic links met while reading
 * are followed only inside the read, never by a request).  Names other than
 * [A-Za-z0-9._-] are not read.
 *
 * Pages are answered with a Content-Type by extension, an ETag (a hash of the
 * contents) with Cache-Control: no-cache (browsers keep them and ask again
 * with If-None-Match: 304), and security headers: a Content-Security-Policy
 * that allows scripts, styles, images and fonts from the server itself only
 * and connections only back to it (HTTP and WebSocket), no framing, no
 * referrer.  This file does not know what the pages do.
 */
#include "web_static.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uthash.h>

#include "server.h"
#include "web.h"

typedef struct static_file {
    char *path; /* owned URL path: "/css/site.css" */
    char *data; /* owned contents */
    size_t len;
    const char *type; /* Content-Type (static string) */
    char etag[20];    /* "\"<16 hex digits>\"" */
    UT_hash_handle hh; /* web_static.files, by path */
} static_file;

typedef struct file_set {
    static_file *files; /* owned */
    size_t count, bytes;
    bool full; /* a limit was reached (logged once) */
} file_set;

struct web_static {
    file_set set;
    char *dir; /* owned: the folder read ("" = pages off) */
};

static const char CSP_FMT[] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                              "font-src 'self'; connect-src 'self'%s%s%s%s; base-uri 'none'; form-action 'self'; "
                              "frame-ancestors 'none'";

/* -- the folder ---------------------------------------------------------- */

static void set_free(file_set *fs)
{
    static_file *f, *tmp;
    HASH_ITER(hh, fs->files, f, tmp)
    {
        HASH_DEL(fs->files, f);
        free(f->path);
        free(f->data);
        free(f);
    }
    fs->count = fs->bytes = 0;
}

static const char *type_of(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".webmanifest", "application/manifest+json"},
        {".txt", "text/plain; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".webp", "image/webp"},
        {".ico", "image/vnd.microsoft.icon"},
        {".woff2", "font/woff2"},
        {".woff", "font/woff"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

static bool name_ok(const char *name)
{
    if (name[0] == '.' || name[0] == '\0')
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

/* Reads one regular file of st.st_size bytes into the set.  Returns 0, or -1
 * when out of memory (a file that cannot be read is logged and skipped). */
static int read_file(server *srv, file_set *fs, const char *fspath, const char *urlpath, const struct stat *st)
{
    if (fs->count >= WEB_STATIC_MAX_FILES || (size_t)st->st_size > WEB_STATIC_MAX_FILE_BYTES ||
        fs->bytes + (size_t)st->st_size > WEB_STATIC_MAX_TOTAL_BYTES) {
        if (!fs->full || (size_t)st->st_size > WEB_STATIC_MAX_FILE_BYTES)
            log_write(&srv->log, LOG_WARN, "web", "web pages: %s skipped (over %u files, %u bytes a file or %u in all)",
                      fspath, WEB_STATIC_MAX_FILES, WEB_STATIC_MAX_FILE_BYTES, WEB_STATIC_MAX_TOTAL_BYTES);
        fs->full = fs->full || (size_t)st->st_size <= WEB_STATIC_MAX_FILE_BYTES;
        return 0;
    }
    int fd = open(fspath, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_write(&srv->log, LOG_WARN, "web", "web pages: cannot read %s: %s", fspath, strerror(errno));
        return 0;
    }
    size_t len = (size_t)st->st_size, got = 0;
    char *data = malloc(len ? len : 1);
    static_file *f = calloc(1, sizeof *f);
    char *path = strdup(urlpath);
    if (!data || !f || !path) {
        close(fd);
        free(data);
        free(f);
        free(path);
        return -1;
    }
    while (got < len) {
        ssize_t n = read(fd, data + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (got != len) {
        log_write(&srv->log, LOG_WARN, "web", "web pages: %s changed while being read; skipped", fspath);
        free(data);
        free(f);
        free(path);
        return 0;
    }
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)data, len, digest);
    char *e = f->etag;
    *e++ = '"';
    for (int i = 0; i < 8; i++)
        e += sprintf(e, "%02x", digest[i]);
    *e++ = '"';
    *e = '\0';
    f->path = path;
    f->data = data;
    f->len = len;
    f->type = type_of(urlpath);
    HASH_ADD_KEYPTR(hh, fs->files, f->path, strlen(f->path), f);
    fs->count++;
    fs->bytes += len;
    return 0;
}

/* Reads the folder fsdir as URL prefix urldir ("" for the top).  Returns 0,
 * or -1 when out of memory. */
static int read_dir(server *srv, file_set *fs, const char *fsdir, const char *urldir, int depth)
{
    DIR *d = opendir(fsdir);
    if (!d) {
        log_write(&srv->log, depth == 0 ? LOG_WARN : LOG_INFO, "web", "web pages: cannot read the folder %s: %s",
                  fsdir, strerror(errno));
        return 0;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!name_ok(de->d_name))
            continue;
        char fspath[PATH_MAX], urlpath[PATH_MAX];
        if ((size_t)snprintf(fspath, sizeof fspath, "%s/%s", fsdir, de->d_name) >= sizeof fspath ||
            (size_t)snprintf(urlpath, sizeof urlpath, "%s/%s", urldir, de->d_name) >= sizeof urlpath)
            continue;
        struct stat st;
        if (stat(fspath, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth + 1 < WEB_STATIC_MAX_DEPTH)
                rc = read_dir(srv, fs, fspath, urlpath, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            rc = read_file(srv, fs, fspath, urlpath, &st);
        }
    }
    closedir(d);
    return rc;
}

/* Reads the folder of cfg into the state, replacing what was there.
 * Returns 0, or -1 when out of memory (the old files stay). */
static int load(server *srv, const config *cfg)
{
    struct web_static *ws = srv->web_static;
    char *dir = cfg->http_static_dir ? strdup(cfg->http_static_dir) : config_default_dir("web", ONAIR_WEB_DIR);
    if (!dir)
        return -1;
    file_set fs = {0};
    if (dir[0] && read_dir(srv, &fs, dir, "", 0) != 0) {
        set_free(&fs);
        free(dir);
        return -1;
    }
    set_free(&ws->set);
    ws->set = fs;
    free(ws->dir);
    ws->dir = dir;
    if (!dir[0])
        log_write(&srv->log, LOG_INFO, "web", "web pages: off (http.static_dir is empty)");
    else
        log_write(&srv->log, fs.count ? LOG_INFO : LOG_WARN, "web", "web pages: %zu files (%zu bytes) from %s",
                  fs.count, fs.bytes, dir);
    return 0;
}

/* -- answering ------------------------------------------------------------ */

static const static_file *find(const struct web_static *ws, const char *path)
{
    static_file *f = NULL;
    HASH_FIND_STR(ws->set.files, path, f);
    return f;
}

/* The file a request path names: "/" is index.html, "/live/<id>" the live
 * page, "/<name>" also <name>.html; else the file of that exact path. */
static const static_file *resolve(const struct web_static *ws, const char *path)
{
    if (strcmp(path, "/") == 0)
        return find(ws, "/index.html");
    static const char live[] = "/live/";
    if (strncmp(path, live, sizeof live - 1) == 0 && path[sizeof live - 1] &&
        !strchr(path + sizeof live - 1, '/'))
        return find(ws, "/live.html");
    const static_file *f = find(ws, path);
    if (f)
        return f;
    const char *last = strrchr(path, '/');
    if (!last || strchr(last, '.') || strlen(path) > 512)
        return NULL;
    char html[600];
    snprintf(html, sizeof html, "%s.html", path);
    return find(ws, html);
}

/* The Host header when it is a plain host[:port] (for the policy's
 * WebSocket sources), else NULL. */
static const char *clean_host(const char *host)
{
    if (!host || !*host || strlen(host) > 255)
        return NULL;
    for (const char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '-' || *p == ':' || *p == '[' || *p == ']'))
            return NULL;
    return host;
}

static void add_page_headers(const web_request *req, web_response *res)
{
    char csp[900];
    const char *host = clean_host(req->host);
    snprintf(csp, sizeof csp, CSP_FMT, host ? " ws://" : "", host ? host : "", host ? " wss://" : "",
             host ? host : "");
    web_add_header(res, "Cache-Control", "no-cache");
    web_add_header(res, "Content-Security-Policy", csp);
    web_add_header(res, "X-Frame-Options", "DENY");
    web_add_header(res, "Referrer-Policy", "no-referrer");
    web_add_header(res, "Cross-Origin-Opener-Policy", "same-origin");
}

/* Whether an If-None-Match list names etag (or is "*"). */
static bool etag_matches(const char *list, const char *etag)
{
    if (!list)
        return false;
    size_t n = strlen(etag);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (*p == '*' || (strncmp(p, etag, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' ')))
            return true;
        while (*p && *p != ',')
            p++;
    }
    return false;
}

static void not_found(const struct web_static *ws, const web_request *req, web_response *res)
{
    add_page_headers(req, res);
    const static_file *page = find(ws, "/404.html");
    if (page) {
        web_reply_body(res, 404, page->type, page->data, page->len);
    } else {
        static const char text[] = "Not found.\n";
        web_reply_body(res, 404, "text/plain; charset=utf-8", text, sizeof text - 1);
    }
}

static void on_page(void *ud, server *srv, const web_request *req, web_response *res)
{
    (void)ud;
    const struct web_static *ws = srv->web_static;
    const static_file *f = resolve(ws, req->path);
    if (!f) {
        not_found(ws, req, res);
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        web_add_header(res, "Allow", "GET, HEAD");
        static const char text[] = "Only GET and HEAD are allowed here.\n";
        web_reply_body(res, 405, "text/plain; charset=utf-8", text, sizeof text - 1);
        return;
    }
    add_page_headers(req, res);
    web_add_header(res, "ETag", f->etag);
    if (etag_matches(req->if_none_match, f->etag)) {
        web_reply_body(res, 304, NULL, NULL, 0);
        return;
    }
    web_reply_body(res, 200, f->type, f->data, f->len);
}

/* GET /api/v1/server: the domains the pages log in to and chat on. */
static void on_server(void *ud, server *srv, const web_request *req, web_response *res)
{
    (void)ud;
    (void)req;
    const char *guest = srv->cfg.guest_domain && srv->cfg.guest_domain[0] ? srv->cfg.guest_domain : NULL;
    json_t *o = json_pack("{s:s, s:s?, s:s, s:s, s:s}", "domain", srv->cfg.domain, "guest_domain", guest,
                          "muc_domain", srv->muc_domain, "media_domain", srv->media_domain, "version", ONAIR_VERSION);
    if (!o)
        web_reply_error(res, 500, NULL, "out of memory");
    else
        web_reply_json(res, 200, o);
}

/* -- lifecycle ------------------------------------------------------------- */

int web_static_start(server *srv)
{
    if (!srv->web || srv->web_static)
        return -1;
    srv->web_static = calloc(1, sizeof *srv->web_static);
    if (!srv->web_static || load(srv, &srv->cfg) != 0)
        return -1;
    if (web_fallback(srv, on_page, NULL) != 0 || web_route(srv, "GET", "/api/v1/server", 0, on_server, NULL) != 0)
        return -1;
    return 0;
}

void web_static_reload(server *srv, const config *next)
{
    if (srv->web_static && load(srv, next) != 0)
        log_write(&srv->log, LOG_ERROR, "web", "web pages: out of memory while reading; keeping the pages read before");
}

void web_static_free(server *srv)
{
    struct web_static *ws = srv->web_static;
    if (!ws)
        return;
    set_free(&ws->set);
    free(ws->dir);
    free(ws);
    srv->web_static = NULL;
}

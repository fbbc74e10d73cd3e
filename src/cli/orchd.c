/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "config.h"
#include "strata-version.h"
#include "exec.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "orch.h"
#include "podman.h"
#include "policy.h"
#include "rpc.h"
#include "orch-args.h"
#include "strata.h"

/* `strata orchd`: the orchestrator as a service. The engine (src/lib/orch)
 * behind the JSON-RPC layer (src/lib/orchd/rpc.h), served over HTTP by
 * libmicrohttpd on a loopback TCP port and a unix socket, with crash
 * recovery at start and the health monitor every interval. */

#define DEFAULT_LISTEN  "127.0.0.1:7390"
#define DEFAULT_SOCKET  "/run/strata/orchd.sock"
#define RPC_PATH        "/rpc/v1"
#define BODY_MAX        ((size_t)1024 * 1024)
#define CONNECTIONS_MAX 64
#define IDLE_TIMEOUT_S  30
#define ADDRESS_FILE    "orchd.address"
#define TOKEN_MAX       4096

static struct orch_args arg_orch;
static const char *arg_listen = DEFAULT_LISTEN;
static const char *arg_socket = DEFAULT_SOCKET;
static const char *arg_token_file;
static const char *arg_scan_dir;
static double arg_interval = 30;

void help_orchd(void)
{
        printf("Usage: strata orchd [OPTIONS]\n"
               "\n"
               "The orchestrator as a service: runs crash recovery, then serves the JSON-RPC 2.0\n"
               "API (POST " RPC_PATH ") on a TCP address and a unix socket, and runs the\n"
               "health monitor every interval, restarting what crashed (tier by tier).\n"
               "Methods: container.list, container.health, package.install, package.start,\n"
               "package.stop, package.restart, package.uninstall, server.info (docs/orchd.md).\n"
               "\n"
               "Options:\n"
               "      --state-dir DIR      state (tracker, user-stopped set, snapshot, PID file)\n"
               "                           [$STRATA_ORCH_STATE_DIR or " ORCH_DEFAULT_STATE_DIR "]\n"
               "      --config FILE        policy config (JSON) [STATE_DIR/config.json if it "
               "exists];\n"
               "                           re-read on SIGHUP\n"
               "      --listen HOST:PORT   TCP address [" DEFAULT_LISTEN "]; port 0 picks one;\n"
               "                           'none' serves no TCP. A non-loopback address needs\n"
               "                           --token-file\n"
               "      --socket PATH        unix socket, mode 0600 [" DEFAULT_SOCKET "]; 'none'\n"
               "      --token-file FILE    every request must carry 'Authorization: Bearer "
               "TOKEN'\n"
               "                           with the token in FILE\n"
               "      --interval SECONDS   health monitor period [30]\n"
               "      --scan-dir DIR       s6 scan dir for native services (package.install\n"
               "                           {id, service: DIR}) [$STRATA_S6_SCAN_DIR; none: off]\n"
               "      --podman PATH        the podman binary [$STRATA_PODMAN or podman]\n"
               "      --podman-root DIR    podman --root [$STRATA_PODMAN_ROOT]\n"
               "      --podman-runroot DIR podman --runroot [$STRATA_PODMAN_RUNROOT]\n"
               "      --podman-runtime RT  podman --runtime [$STRATA_PODMAN_RUNTIME]\n"
               "  -h, --help               show this help\n"
               "\n"
               "The address actually bound is written to STATE_DIR/" ADDRESS_FILE ".\n"
               "Signals: SIGTERM/SIGINT stop cleanly (snapshot written, PID file removed,\n"
               "packages left running); SIGHUP re-reads the config.\n"
               "\n"
               "Exit status: 0 clean stop, 1 failure, 2 usage error, 75 another orchd holds\n"
               "the state dir.\n");
}

/* The log, one line each: time, level, message (a sink, so every line of
 * the daemon's log says how bad it is). */
static void log_sink(int level, const char *message, void *userdata)
{
        static const char *const names[] = {"emerg",   "alert",  "crit", "error",
                                            "warning", "notice", "info", "debug"};
        struct timespec ts;
        struct tm tm;
        char when[32];

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ldZ orchd[%d] %s: %s\n", when, ts.tv_nsec / 1000000, (int)getpid(),
                names[level & 7], message);
}

struct server {
        struct rpc_server rpc;
        char *token; /* NULL: none needed */
};

struct request {
        char *body;
        size_t len;
        int status; /* an HTTP error decided early, 0 otherwise */
        const char *why;
};

static int queue_json(struct MHD_Connection *c, unsigned status, const char *json)
{
        struct MHD_Response *r;
        int ret;

        r = MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
        if (!r)
                return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "POST");
        if (status == MHD_HTTP_UNAUTHORIZED)
                MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
        ret = MHD_queue_response(c, status, r);
        MHD_destroy_response(r);
        return ret;
}

/* An HTTP-level refusal, with a JSON-RPC error body that says why. */
static int queue_refusal(struct MHD_Connection *c, unsigned status, const char *why)
{
        _cleanup_free_ char *s = NULL;
        json_t *j = json_pack("{s:s,s:{s:i,s:s},s:n}", "jsonrpc", "2.0", "error", "code",
                              RPC_INVALID_REQUEST, "message", why, "id");

        if (!j)
                return MHD_NO;
        s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(j);
        return s ? queue_json(c, status, s) : MHD_NO;
}

static bool token_matches(const char *token, const char *header)
{
        const char *given = header ? startswith(header, "Bearer ") : NULL;
        size_t n = strlen(token), m;
        unsigned char diff = 0;

        if (!given)
                return false;
        m = strlen(given);
        /* compare all of it whatever differs, so timing says nothing */
        for (size_t i = 0; i < n; i++)
                diff |= (unsigned char)token[i] ^ (unsigned char)(i < m ? given[i] : 0);
        return diff == 0 && m == n;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
        struct server *srv = cls;
        struct request *rq = *con_cls;
        _cleanup_free_ char *out = NULL;
        int r;

        if (!rq) {
                const char *cl;

                rq = calloc(1, sizeof(*rq));
                if (!rq)
                        return MHD_NO;
                *con_cls = rq;
                /* decide what we can before reading a body */
                if (!streq(url, RPC_PATH))
                        return queue_refusal(c, MHD_HTTP_NOT_FOUND, "not found: POST " RPC_PATH);
                if (!streq(method, MHD_HTTP_METHOD_POST))
                        return queue_refusal(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                                             "method not allowed: POST " RPC_PATH);
                if (srv->token && !token_matches(srv->token, MHD_lookup_connection_value(
                                                                 c, MHD_HEADER_KIND,
                                                                 MHD_HTTP_HEADER_AUTHORIZATION))) {
                        log_warning("refused a request without the right bearer token");
                        return queue_refusal(c, MHD_HTTP_UNAUTHORIZED,
                                             "unauthorized: 'Authorization: Bearer TOKEN' needed");
                }
                cl =
                    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                if (cl && strtoull(cl, NULL, 10) > BODY_MAX) {
                        log_warning("refused a request body of %s bytes (limit %zu)", cl, BODY_MAX);
                        return queue_refusal(c, MHD_HTTP_CONTENT_TOO_LARGE,
                                             "invalid request: the body is over the 1 MiB limit");
                }
                return MHD_YES;
        }

        if (*upload_data_size > 0) {
                if (!rq->status && rq->len + *upload_data_size > BODY_MAX) {
                        rq->status = MHD_HTTP_CONTENT_TOO_LARGE;
                        rq->why = "invalid request: the body is over the 1 MiB limit";
                        free(rq->body);
                        rq->body = NULL;
                }
                if (!rq->status) {
                        char *b = realloc(rq->body, rq->len + *upload_data_size + 1);
                        if (!b)
                                return MHD_NO;
                        memcpy(b + rq->len, upload_data, *upload_data_size);
                        rq->body = b;
                        rq->len += *upload_data_size;
                }
                *upload_data_size = 0;
                return MHD_YES;
        }

        if (rq->status) {
                log_warning("refused a request: %s", rq->why);
                return queue_refusal(c, rq->status, rq->why);
        }
        r = rpc_handle(&srv->rpc, rq->body ?: "", rq->len, &out);
        if (r < 0) {
                log_error_errno(r, "cannot answer a request: %m");
                return MHD_NO;
        }
        if (!out) {
                struct MHD_Response *resp =
                    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
                if (!resp)
                        return MHD_NO;
                r = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, resp);
                MHD_destroy_response(resp);
                return r;
        }
        return queue_json(c, MHD_HTTP_OK, out);
}

static void request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
        struct request *rq = *con_cls;

        if (rq) {
                free(rq->body);
                free(rq);
        }
        *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        char buf[512];
        size_t n;

        vsnprintf(buf, sizeof(buf), fmt, ap);
        n = strlen(buf);
        while (n > 0 && buf[n - 1] == '\n')
                buf[--n] = '\0';
        log_info("http: %s", buf);
}

/* "HOST:PORT" (IPv4) or "[HOST]:PORT" (IPv6) into an address. */
static int parse_listen(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len,
                        bool *ret_loopback)
{
        _cleanup_free_ char *host = NULL;
        const char *colon = strrchr(s, ':');
        char *end;
        unsigned long port;

        if (!colon || colon == s)
                return -EINVAL;
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (errno || end == colon + 1 || *end || port > 65535)
                return -EINVAL;
        if (s[0] == '[') {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)ret;
                if (colon[-1] != ']')
                        return -EINVAL;
                host = strndup(s + 1, (size_t)(colon - s - 2));
                if (!host)
                        return -ENOMEM;
                *a = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_port = htons(port)};
                if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
                        return -EINVAL;
                *ret_len = sizeof(*a);
                *ret_loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
        } else {
                struct sockaddr_in *a = (struct sockaddr_in *)ret;
                host = strndup(s, (size_t)(colon - s));
                if (!host)
                        return -ENOMEM;
                *a = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port)};
                if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
                        return -EINVAL;
                *ret_len = sizeof(*a);
                *ret_loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
        }
        return 0;
}

static int listen_tcp(const struct sockaddr_storage *a, socklen_t len, char **ret_bound)
{
        _cleanup_close_ int fd = -1;
        struct sockaddr_storage b;
        socklen_t blen = sizeof(b);
        char host[INET6_ADDRSTRLEN];
        int one = 1;

        fd = socket(a->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (const struct sockaddr *)a, len) < 0 || listen(fd, 64) < 0 ||
            getsockname(fd, (struct sockaddr *)&b, &blen) < 0)
                return negative_errno();
        if (b.ss_family == AF_INET) {
                struct sockaddr_in *i = (struct sockaddr_in *)&b;
                inet_ntop(AF_INET, &i->sin_addr, host, sizeof(host));
                if (asprintf(ret_bound, "%s:%u", host, ntohs(i->sin_port)) < 0)
                        return -ENOMEM;
        } else {
                struct sockaddr_in6 *i = (struct sockaddr_in6 *)&b;
                inet_ntop(AF_INET6, &i->sin6_addr, host, sizeof(host));
                if (asprintf(ret_bound, "[%s]:%u", host, ntohs(i->sin6_port)) < 0)
                        return -ENOMEM;
        }
        return TAKE_FD(fd);
}

/* A unix socket at path, mode 0600. A stale socket left by a crash is
 * replaced; anything else at path is refused. */
static int listen_unix(const char *path)
{
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *dir = NULL;
        struct stat st;
        mode_t old;
        int r;

        if (strlen(path) >= sizeof(a.sun_path))
                return -ENAMETOOLONG;
        memcpy(a.sun_path, path, strlen(path));
        dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        if (strrchr(dir, '/') && strrchr(dir, '/') != dir) {
                *strrchr(dir, '/') = '\0';
                r = mkdir_p_at(AT_FDCWD, dir, 0755);
                if (r < 0)
                        return r;
        }
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                /* we hold the state dir, so a socket there is a dead orchd's */
                if (unlink(path) < 0)
                        return negative_errno();
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        old = umask(0177);
        r = bind(fd, (struct sockaddr *)&a, sizeof(a));
        umask(old);
        if (r < 0)
                return negative_errno();
        if (chmod(path, 0600) < 0 || listen(fd, 64) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

static struct MHD_Daemon *start_http(struct server *srv, int fd)
{
        return MHD_start_daemon(
            MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0,
            NULL, NULL, handle, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
            MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS_MAX,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
            request_completed, NULL, MHD_OPTION_END);
}

static int read_token(const char *path, char **ret)
{
        _cleanup_free_ char *s = NULL;
        size_t n;
        int r;

        r = read_file_at(AT_FDCWD, path, TOKEN_MAX, &s, &n);
        if (r < 0)
                return log_error_errno(r, "cannot read the token file '%s': %m", path);
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
                s[--n] = '\0';
        if (n < 16 || strlen(s) != n || strpbrk(s, " \t\r\n"))
                return log_error_errno(EINVAL,
                                       "the token file '%s' must hold one token of at least 16 "
                                       "characters, without blanks",
                                       path);
        *ret = TAKE_PTR(s);
        return 0;
}

static void log_recovery(const struct recovery_plan *p, bool crashed, struct podman *pm)
{
        if (!crashed) {
                log_info("no crash detected: nothing to recover");
                return;
        }
        log_notice("the previous orchd did not stop cleanly: recovering %zu package(s)", p->n);
        for (size_t i = 0; i < p->n; i++) {
                const struct recovery_step *s = &p->steps[i];
                if (s->skip)
                        log_notice("recovery: '%s' skipped: %s", s->name, s->reason);
                else if (s->error < 0)
                        log_error_errno(s->error, "recovery: cannot start '%s': %s", s->name,
                                        podman_last_error(pm));
                else
                        log_notice("recovery: started '%s' (tier %s)", s->name,
                                   tier_to_string(s->tier));
        }
}

static void health_tick(struct server *srv)
{
        _cleanup_free_ char *error = NULL;
        struct health_plan p = {};
        usec_t t0 = clock_monotonic(clock_real());
        int r;

        r = rpc_health_pass(&srv->rpc, &p, &error);
        log_debug("health pass: %d, %zu package(s), %.3f s", r, r >= 0 ? p.n : 0,
                  (double)(clock_monotonic(clock_real()) - t0) / USEC_PER_SEC);
        if (r == -EBUSY) {
                log_info("%s", error);
                return;
        }
        if (r < 0) {
                log_error_errno(r, "health pass failed: %s", error ?: strerror(-r));
                return;
        }
        for (size_t i = 0; i < p.n; i++) {
                const struct health_action *a = &p.actions[i];
                if (a->verdict == HEALTH_RESTART)
                        log_notice("health: restarted '%s' (attempt %u): %s", a->name,
                                   a->attempts + 1, a->reason);
                else if (a->verdict == HEALTH_NOTIFY)
                        log_warning("health: gave up on '%s': %s", a->name, a->reason);
        }
        health_plan_done(&p);
}

/* SIGHUP: the config again. Returns true when done (false: try later). */
static bool reload(struct server *srv, struct policy *policy)
{
        struct policy p = {};
        int r;

        if (orch_args_policy(&arg_orch, &p) < 0) {
                log_warning("config not reloaded: keeping the one in force");
                return true;
        }
        r = rpc_replace_policy(&srv->rpc, policy, &p);
        if (r == -EBUSY) {
                policy_done(&p);
                return false;
        }
        log_notice("config reloaded");
        return true;
}

/* Everything one run of the daemon holds, released by daemon_done(). */
struct daemon {
        struct server srv;
        struct policy policy;
        struct podman *pm;
        struct services *sv;
        struct orch *o;
        struct MHD_Daemon *http_tcp, *http_unix;
        struct sockaddr_storage addr;
        socklen_t addr_len;
        char *bound; /* the TCP address bound, NULL: none */
        int sig_fd;
        bool rpc_ready;
};

/* The options into arg_* and d's address: -1 to go on, else the exit
 * status. */
static int parse_args(int argc, char **argv, struct daemon *d)
{
        enum {
                ARG_LISTEN = 0x100,
                ARG_SOCKET,
                ARG_TOKEN_FILE,
                ARG_INTERVAL,
                ARG_SCAN_DIR,
        };
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            ORCH_ARGS_OPTIONS,
            {"listen", required_argument, NULL, ARG_LISTEN},
            {"socket", required_argument, NULL, ARG_SOCKET},
            {"token-file", required_argument, NULL, ARG_TOKEN_FILE},
            {"interval", required_argument, NULL, ARG_INTERVAL},
            {"scan-dir", required_argument, NULL, ARG_SCAN_DIR},
            {},
        };
        bool loopback = true;
        int opt;

        orch_args_init(&arg_orch);
        arg_scan_dir = getenv("STRATA_S6_SCAN_DIR");
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (orch_args_parse(&arg_orch, opt, optarg))
                        continue;
                switch (opt) {
                case 'h':
                        help_orchd();
                        return EXIT_OK;
                case ARG_LISTEN:
                        arg_listen = optarg;
                        break;
                case ARG_SOCKET:
                        arg_socket = optarg;
                        break;
                case ARG_TOKEN_FILE:
                        arg_token_file = optarg;
                        break;
                case ARG_INTERVAL:
                        if (orch_args_seconds(optarg, 0.1, &arg_interval) < 0) {
                                log_error("invalid --interval '%s': seconds, 0.1 to 86400", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case ARG_SCAN_DIR:
                        arg_scan_dir = optarg;
                        break;
                case '?':
                        return EXIT_USAGE;
                default:
                        return EXIT_SOFTWARE;
                }
        }
        if (optind < argc) {
                log_error("unexpected argument '%s'", argv[optind]);
                return EXIT_USAGE;
        }
        if (streq(arg_listen, "none"))
                arg_listen = NULL;
        if (streq(arg_socket, "none"))
                arg_socket = NULL;
        if (!arg_listen && !arg_socket) {
                log_error("--listen none and --socket none: nothing to serve on");
                return EXIT_USAGE;
        }
        if (arg_listen && parse_listen(arg_listen, &d->addr, &d->addr_len, &loopback) < 0) {
                log_error("invalid --listen '%s': HOST:PORT or [HOST]:PORT with a numeric address",
                          arg_listen);
                return EXIT_USAGE;
        }
        if (!loopback && !arg_token_file) {
                log_error("refusing to listen on '%s' beyond loopback without --token-file",
                          arg_listen);
                return EXIT_USAGE;
        }
        return -1;
}

/* The token, the policy, podman, the state dir (locked), the s6 services
 * and the signalfd: 0, or the exit status (logged). */
static int daemon_open(struct daemon *d)
{
        _cleanup_free_ char *error = NULL;
        sigset_t mask;
        int r;

        if (arg_token_file && read_token(arg_token_file, &d->srv.token) < 0)
                return EXIT_FAILURE_;
        if (orch_args_policy(&arg_orch, &d->policy) < 0)
                return EXIT_FAILURE_;
        if (orch_args_podman(&arg_orch, &d->policy, &d->pm) < 0)
                return EXIT_FAILURE_;
        r = orch_open(arg_orch.state_dir, d->pm, &d->policy, clock_real(), true, &d->o, &error);
        if (r < 0) {
                log_error_errno(r, "%s", error ?: strerror(-r));
                return r == -EWOULDBLOCK ? EXIT_TEMPFAIL : EXIT_FAILURE_;
        }
        if (arg_scan_dir && *arg_scan_dir) {
                r = services_new(executor_real(), clock_real(), arg_scan_dir, &d->sv);
                if (r < 0) {
                        log_error_errno(r, "cannot open the s6 scan dir '%s': %m", arg_scan_dir);
                        return EXIT_FAILURE_;
                }
                d->o->services = d->sv;
        }
        for (size_t i = 0; i < d->o->n_warnings; i++)
                log_warning("%s", d->o->warnings[i]);

        /* Signals arrive through a signalfd; blocked before any thread starts,
         * so that the HTTP threads inherit the mask. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        d->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (d->sig_fd < 0) {
                log_error_errno(errno, "cannot create a signalfd: %m");
                return EXIT_FAILURE_;
        }
        return 0;
}

/* Crash recovery (what a dead orchd ran is started again): 0, or the exit
 * status (logged). */
static int daemon_recover(struct daemon *d)
{
        _cleanup_free_ char *error = NULL;
        struct recovery_plan plan = {};
        bool crashed = false;
        int r;

        r = orch_recover(d->o, false, &crashed, &plan, &error);
        if (r < 0) {
                log_error_errno(r, "crash recovery failed: %s", error ?: strerror(-r));
                return r == -EBUSY ? EXIT_TEMPFAIL : EXIT_FAILURE_;
        }
        log_recovery(&plan, crashed, d->pm);
        recovery_plan_done(&plan);
        return 0;
}

/* The RPC server on the TCP address and the unix socket, and the address
 * file: 0 or -errno (logged). */
static int daemon_serve(struct daemon *d)
{
        _cleanup_free_ char *address = NULL;
        int fd, r;

        r = rpc_server_init(&d->srv.rpc, d->o, STRATA_VERSION, arg_orch.state_dir,
                            (int64_t)arg_interval);
        if (r < 0)
                return log_error_errno(r, "cannot set up the RPC server: %m");
        d->rpc_ready = true;
        if (arg_listen) {
                fd = listen_tcp(&d->addr, d->addr_len, &d->bound);
                if (fd < 0)
                        return log_error_errno(fd, "cannot listen on '%s': %m", arg_listen);
                d->http_tcp = start_http(&d->srv, fd); /* MHD's fd now */
                if (!d->http_tcp) {
                        safe_close(fd);
                        return log_error_errno(EIO, "cannot start the HTTP server on '%s'",
                                               d->bound);
                }
                log_notice("serving POST " RPC_PATH " on http://%s%s", d->bound,
                           d->srv.token ? " (bearer token required)" : "");
        }
        if (arg_socket) {
                fd = listen_unix(arg_socket);
                if (fd < 0)
                        return log_error_errno(fd, "cannot listen on the unix socket '%s': %m",
                                               arg_socket);
                d->http_unix = start_http(&d->srv, fd);
                if (!d->http_unix) {
                        safe_close(fd);
                        (void)unlink(arg_socket);
                        return log_error_errno(EIO, "cannot start the HTTP server on '%s'",
                                               arg_socket);
                }
                log_notice("serving POST " RPC_PATH " on unix:%s", arg_socket);
        }
        if (asprintf(&address, "%s\n", d->bound ?: "none") < 0)
                return log_oom();
        r = write_file_atomic_at(d->o->state_fd, ADDRESS_FILE, address, strlen(address), 0644);
        if (r < 0)
                return log_error_errno(r, "cannot write '%s/%s': %m", arg_orch.state_dir,
                                       ADDRESS_FILE);
        log_notice("orchd %s running (pid %d, state dir '%s', health every %.1f s%s%s)",
                   STRATA_VERSION, (int)getpid(), arg_orch.state_dir, arg_interval,
                   d->sv ? ", s6 services in " : "", d->sv ? arg_scan_dir : "");
        return 0;
}

/* The health monitor at a fixed rate and the signals, until SIGTERM or
 * SIGINT: returns the exit status. */
static int daemon_loop(struct daemon *d)
{
        usec_t period = (usec_t)(arg_interval * USEC_PER_SEC);
        usec_t next = clock_monotonic(clock_real()) + period;
        bool reload_pending = false;

        for (;;) {
                usec_t now = clock_monotonic(clock_real());
                struct pollfd p = {.fd = d->sig_fd, .events = POLLIN};
                int timeout_ms = now >= next ? 0 : (int)((next - now + 999) / 1000);
                int r;

                if (reload_pending && timeout_ms > 1000)
                        timeout_ms = 1000;
                r = poll(&p, 1, timeout_ms);
                if (r < 0 && errno != EINTR) {
                        log_error_errno(errno, "poll failed: %m");
                        return EXIT_FAILURE_;
                }
                if (r > 0) {
                        struct signalfd_siginfo si;
                        if (read(d->sig_fd, &si, sizeof(si)) == sizeof(si)) {
                                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                                        log_notice("stopping on %s", strsignal((int)si.ssi_signo));
                                        return EXIT_OK;
                                }
                                if (si.ssi_signo == SIGHUP)
                                        reload_pending = true;
                        }
                }
                if (reload_pending)
                        reload_pending = !reload(&d->srv, &d->policy);
                if (clock_monotonic(clock_real()) >= next) {
                        health_tick(&d->srv);
                        /* a fixed rate: a pass's own time does not stretch
                         * the period (one that overran skips ahead) */
                        next += period;
                        if (next <= clock_monotonic(clock_real()))
                                next = clock_monotonic(clock_real()) + period;
                }
        }
}

/* Serve nothing more, let the calls under way finish, then leave the
 * packages running, with a snapshot of them: returns ret, or
 * EXIT_FAILURE_ when the state could not be saved. */
static int daemon_stop(struct daemon *d, int ret)
{
        _cleanup_free_ char *error = NULL;
        int r;

        if (d->http_tcp)
                MHD_stop_daemon(d->http_tcp);
        if (d->http_unix) {
                MHD_stop_daemon(d->http_unix);
                (void)unlink(arg_socket);
        }
        d->http_tcp = d->http_unix = NULL;
        r = orch_snapshot(d->o, &error);
        if (r < 0) {
                log_error_errno(r, "cannot save the snapshot: %s", error ?: strerror(-r));
                ret = EXIT_FAILURE_;
        }
        (void)unlinkat(d->o->state_fd, ADDRESS_FILE, 0);
        r = orch_shutdown(d->o);
        if (r < 0) {
                log_error_errno(r, "cannot remove the PID file: %m");
                ret = EXIT_FAILURE_;
        }
        if (ret == EXIT_OK)
                log_notice("stopped cleanly; packages left running");
        return ret;
}

static void daemon_done(struct daemon *d)
{
        if (d->rpc_ready)
                rpc_server_done(&d->srv.rpc);
        safe_close(d->sig_fd);
        free(d->srv.token);
        free(d->bound);
        orch_free(d->o);
        services_free(d->sv);
        podman_free(d->pm);
        policy_done(&d->policy);
}

int cmd_orchd(int argc, char **argv)
{
        struct daemon d = {.sig_fd = -1};
        int r;

        r = parse_args(argc, argv, &d);
        if (r >= 0)
                return r;

        log_set_sink(log_sink, NULL);
        if (log_get_max_level() < LOG_INFO)
                log_set_max_level(LOG_INFO);

        r = daemon_open(&d);
        if (r == 0)
                r = daemon_recover(&d);
        if (r == 0)
                r = daemon_stop(&d, daemon_serve(&d) < 0 ? EXIT_FAILURE_ : daemon_loop(&d));
        daemon_done(&d);
        return r;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* strata-nfsd: a user-space NFSv3 server. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "config.h"
#include "strata-version.h"
#include "export.h"
#include "fhandle.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "server.h"
#include "transport.h"

#define EXIT_USAGE 2

static const char *arg_listen = "127.0.0.1:4000";
static const char *arg_exports = NULL;
static const char *arg_state_dir = "/var/lib/strata-nfsd";
static unsigned arg_threads = 8;
static struct transport_limits arg_limits = {
    .max_connections = TRANSPORT_MAX_CONNECTIONS,
    .idle_timeout = TRANSPORT_IDLE_TIMEOUT,
    .max_memory = TRANSPORT_MAX_MEMORY,
    .poll_us = TRANSPORT_POLL_US,
};
static const char *arg_dir = NULL;

static void help(void)
{
        printf("Usage: strata-nfsd [OPTIONS] [DIR]\n"
               "\n"
               "Serves directories over NFS version 3 (with MOUNT version 3 and a\n"
               "portmapper answering GETPORT) on one TCP port: a client needs only\n"
               "`port=P,mountport=P` and no rpcbind.\n"
               "\n"
               "A lone DIR is exported as `/` to loopback clients, read-write,\n"
               "no_root_squash. Otherwise --exports names an exports(5)-style file\n"
               "(`secure`, the default there, requires a reserved source port).\n"
               "A local peer not owned by root acts only as its socket's owner,\n"
               "whatever uid its credentials claim.\n"
               "\n"
               "Options:\n"
               "  -l, --listen ADDR:PORT   address to listen on (default 127.0.0.1:4000;\n"
               "                           [ADDR]:PORT for IPv6; port 0 picks a free one)\n"
               "  -e, --exports FILE       exports file (path clients(options)...)\n"
               "  -s, --state-dir DIR      where the handle key lives\n"
               "                           (default /var/lib/strata-nfsd)\n"
               "  -t, --threads N          worker threads (default 8)\n"
               "      --max-connections N  connections at once; the oldest idle one is\n"
               "                           closed to make room (default 1024)\n"
               "      --idle-timeout SECS  close connections idle that long (default 360;\n"
               "                           0: never)\n"
               "      --max-memory MIB     requests and replies held for all clients\n"
               "                           (default 256)\n"
               "      --poll-us USECS      after answering a call, a worker polls for the\n"
               "                           next one that long before it sleeps (default 50;\n"
               "                           0: never)\n"
               "  -v, --verbose            log more (repeat for debug)\n"
               "  -h, --help               show this help\n"
               "  -V, --version            print the version\n"
               "\n"
               "When ready it prints `listening on ADDR:PORT` on stdout.\n"
               "SIGTERM and SIGINT stop it; SIGHUP re-reads the exports file.\n"
               "Exit status: 0 stopped by a signal, 1 failure, 2 usage error.\n");
}

static int parse_listen(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len)
{
        _cleanup_free_ char *host = NULL;
        const char *colon, *port_s;
        char *end;
        unsigned long port;

        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                host = strndup(s + 1, (size_t)(close - s - 1));
                port_s = close + 2;
        } else {
                colon = strrchr(s, ':');
                if (!colon)
                        return -EINVAL;
                host = strndup(s, (size_t)(colon - s));
                port_s = colon + 1;
        }
        if (!host)
                return -ENOMEM;
        errno = 0;
        port = strtoul(port_s, &end, 10);
        if (errno || end == port_s || *end || port > 65535)
                return -EINVAL;

        memset(ret, 0, sizeof(*ret));
        struct sockaddr_in *in4 = (struct sockaddr_in *)ret;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ret;
        if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
                in4->sin_family = AF_INET;
                in4->sin_port = htons((uint16_t)port);
                *ret_len = sizeof(*in4);
        } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t)port);
                *ret_len = sizeof(*in6);
        } else
                return -EINVAL;
        return 0;
}

static bool addr_is_loopback(const struct sockaddr_storage *sa)
{
        if (sa->ss_family == AF_INET)
                return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

static int load_exports(const struct fhandle_key *key, struct export_table **ret)
{
        struct export_table *t = NULL;
        _cleanup_free_ char *text = NULL, *error = NULL;
        const char *failed = NULL;
        int r;

        if (arg_exports) {
                r = read_file_at(AT_FDCWD, arg_exports, 1024 * 1024, &text, NULL);
                if (r < 0)
                        return log_error_errno(r, "cannot read exports file '%s': %m", arg_exports);
                r = export_table_parse(text, &t, &error);
                if (r == -EINVAL)
                        return log_error_errno(r, "invalid exports file '%s': %s", arg_exports,
                                               error);
        } else
                r = export_table_new_loopback(arg_dir, &t);
        if (r < 0)
                return log_oom();

        r = export_table_open(t, key, &failed);
        if (r < 0) {
                /* failed points into t: log before releasing it. */
                if (r == -EOPNOTSUPP)
                        log_error_errno(r,
                                        "cannot export '%s': its filesystem has no persistent "
                                        "file handles",
                                        failed);
                else if (r == -EEXIST)
                        log_error_errno(r, "cannot export '%s': export id collision", failed);
                else
                        log_error_errno(r, "cannot export '%s': %m", failed);
                export_table_unref(t);
                return r;
        }
        *ret = t;
        return 0;
}

struct signal_ctx {
        struct nfsd_server *server;
};

static int on_signal(uint32_t signo, void *userdata)
{
        struct signal_ctx *ctx = userdata;
        struct export_table *t;

        if (signo != SIGHUP) {
                log_info("stopping on signal %u", signo);
                return -1;
        }
        if (!arg_exports) {
                log_info("SIGHUP: no exports file to re-read");
                return 0;
        }
        if (load_exports(&ctx->server->key, &t) < 0) {
                log_warning("SIGHUP: keeping the current exports");
                return 0;
        }
        nfsd_server_set_exports(ctx->server, t);
        log_info("SIGHUP: exports re-read from '%s'", arg_exports);
        return 0;
}

static int parse_args(int argc, char **argv)
{
        static const struct option options[] = {
            {"listen", required_argument, NULL, 'l'},
            {"exports", required_argument, NULL, 'e'},
            {"state-dir", required_argument, NULL, 's'},
            {"threads", required_argument, NULL, 't'},
            {"verbose", no_argument, NULL, 'v'},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {"max-connections", required_argument, NULL, 'C'},
            {"idle-timeout", required_argument, NULL, 'I'},
            {"max-memory", required_argument, NULL, 'M'},
            {"poll-us", required_argument, NULL, 'P'},
            {},
        };
        int c, verbose = 0;

        while ((c = getopt_long(argc, argv, "l:e:s:t:vhV", options, NULL)) >= 0) {
                switch (c) {
                case 'l':
                        arg_listen = optarg;
                        break;
                case 'e':
                        arg_exports = optarg;
                        break;
                case 's':
                        arg_state_dir = optarg;
                        break;
                case 't': {
                        char *end;
                        unsigned long n;
                        errno = 0;
                        n = strtoul(optarg, &end, 10);
                        if (errno || end == optarg || *end || n < 1 || n > 256) {
                                log_error("invalid --threads '%s' (1..256)", optarg);
                                return -EINVAL;
                        }
                        arg_threads = (unsigned)n;
                        break;
                }
                case 'C':
                case 'I':
                case 'M':
                case 'P': {
                        static const struct {
                                int opt;
                                const char *name;
                                unsigned long min, max;
                        } ranges[] = {
                            {'C', "--max-connections", 1, 65536},
                            {'I', "--idle-timeout", 0, 86400},
                            {'M', "--max-memory", 16, 1024 * 1024},
                            {'P', "--poll-us", 0, 10000},
                        };
                        char *end;
                        unsigned long n;
                        size_t k = 0;

                        while (ranges[k].opt != c)
                                k++;
                        errno = 0;
                        n = strtoul(optarg, &end, 10);
                        if (errno || end == optarg || *end || n < ranges[k].min ||
                            n > ranges[k].max) {
                                log_error("invalid %s '%s' (%lu..%lu)", ranges[k].name, optarg,
                                          ranges[k].min, ranges[k].max);
                                return -EINVAL;
                        }
                        if (c == 'C')
                                arg_limits.max_connections = (unsigned)n;
                        else if (c == 'I')
                                arg_limits.idle_timeout = (unsigned)n;
                        else if (c == 'M')
                                arg_limits.max_memory = (size_t)n * 1024 * 1024;
                        else
                                arg_limits.poll_us = (unsigned)n;
                        break;
                }
                case 'v':
                        verbose++;
                        break;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("strata-nfsd %s\n", STRATA_VERSION);
                        return 0;
                case '?':
                        return -EINVAL;
                default:
                        return -EINVAL;
                }
        }
        if (verbose)
                log_set_max_level(verbose > 1 ? LOG_DEBUG : LOG_INFO);
        if (optind < argc)
                arg_dir = argv[optind++];
        if (optind < argc) {
                log_error("unexpected argument '%s'", argv[optind]);
                return -EINVAL;
        }
        if (!!arg_dir == !!arg_exports) {
                log_error("give either DIR or --exports FILE (see --help)");
                return -EINVAL;
        }
        return 1;
}

int main(int argc, char **argv)
{
        struct nfsd_server server;
        struct fhandle_key key;
        struct export_table *exports = NULL;
        struct transport *t = NULL;
        struct sockaddr_storage addr;
        socklen_t addr_len;
        _cleanup_close_ int state_fd = -1, listen_fd = -1, sig_fd = -1;
        struct signal_ctx ctx = {.server = &server};
        sigset_t mask;
        char host[INET6_ADDRSTRLEN];
        int r, one = 1;

        log_set_program_name("strata-nfsd");
        r = parse_args(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;

        r = parse_listen(arg_listen, &addr, &addr_len);
        if (r < 0) {
                log_error("invalid --listen '%s' (expected ADDR:PORT or [ADDR]:PORT)", arg_listen);
                return EXIT_USAGE;
        }
        if (!addr_is_loopback(&addr) && !arg_exports) {
                log_error("refusing to listen on '%s' without an exports file naming the "
                          "allowed clients (--exports)",
                          arg_listen);
                return EXIT_USAGE;
        }

        r = mkdir_p_at(AT_FDCWD, arg_state_dir, 0700);
        if (r < 0) {
                log_error_errno(r, "cannot create state directory '%s': %m", arg_state_dir);
                return EXIT_FAILURE;
        }
        state_fd = open(arg_state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (state_fd < 0) {
                log_error_errno(errno, "cannot open state directory '%s': %m", arg_state_dir);
                return EXIT_FAILURE;
        }
        {
                struct stat st;

                /* Whoever may write there may replace the key, and forge handles. */
                if (fstat(state_fd, &st) < 0) {
                        log_error_errno(errno, "cannot stat state directory '%s': %m",
                                        arg_state_dir);
                        return EXIT_FAILURE;
                }
                if (st.st_uid != geteuid() || (st.st_mode & 022)) {
                        log_error("refusing state directory '%s': owned by uid %u with mode %04o; "
                                  "it must belong to uid %u and not be writable by group or "
                                  "others",
                                  arg_state_dir, (unsigned)st.st_uid,
                                  (unsigned)(st.st_mode & 07777), (unsigned)geteuid());
                        return EXIT_FAILURE;
                }
        }
        r = fhandle_key_load(state_fd, "handle-key", &key);
        if (r == -EBADMSG) {
                log_error("handle key '%s/handle-key' has the wrong size; remove it to make a "
                          "new one (clients will have to mount again)",
                          arg_state_dir);
                return EXIT_FAILURE;
        }
        if (r == -EPERM) {
                log_error("refusing handle key '%s/handle-key': it must be a regular file owned "
                          "by uid %u with no permission for group or others (chmod 600)",
                          arg_state_dir, (unsigned)geteuid());
                return EXIT_FAILURE;
        }
        if (r < 0) {
                log_error_errno(r, "cannot load handle key in '%s': %m", arg_state_dir);
                return EXIT_FAILURE;
        }

        if (load_exports(&key, &exports) < 0)
                return EXIT_FAILURE;

        /* Modes of created files are exactly what the client asks for. */
        umask(0);

        /* Each connection takes two fds: as many as this user may have. */
        {
                struct rlimit rl;

                if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                        rl.rlim_cur = rl.rlim_max;
                        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                                log_debug("cannot raise the open file limit: %m");
                }
        }
        /* Request buffers of a record's size are mapped and unmapped, so
         * memory held for a burst of clients goes back when they are done. */
        mallopt(M_MMAP_THRESHOLD, 256 * 1024);

        listen_fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (listen_fd < 0 ||
            setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(listen_fd, (struct sockaddr *)&addr, addr_len) < 0 || listen(listen_fd, 128) < 0) {
                log_error_errno(errno, "cannot listen on '%s': %m", arg_listen);
                export_table_unref(exports);
                return EXIT_FAILURE;
        }
        addr_len = sizeof(addr);
        getsockname(listen_fd, (struct sockaddr *)&addr, &addr_len);

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (sig_fd < 0) {
                log_error_errno(errno, "cannot create signalfd: %m");
                export_table_unref(exports);
                return EXIT_FAILURE;
        }

        nfsd_server_init(&server, &key);
        nfsd_server_set_exports(&server, exports);
        server.port = ntohs(addr.ss_family == AF_INET ? ((struct sockaddr_in *)&addr)->sin_port
                                                      : ((struct sockaddr_in6 *)&addr)->sin6_port);

        r = transport_new(&server, TAKE_FD(listen_fd), arg_threads, &arg_limits, &t);
        if (r < 0) {
                log_error_errno(r, "cannot start the server: %m");
                nfsd_server_done(&server);
                return EXIT_FAILURE;
        }

        inet_ntop(addr.ss_family,
                  addr.ss_family == AF_INET ? (void *)&((struct sockaddr_in *)&addr)->sin_addr
                                            : (void *)&((struct sockaddr_in6 *)&addr)->sin6_addr,
                  host, sizeof(host));
        printf(addr.ss_family == AF_INET6 ? "listening on [%s]:%u\n" : "listening on %s:%u\n", host,
               server.port);
        fflush(stdout);

        r = transport_run(t, sig_fd, on_signal, &ctx);
        transport_free(t);
        nfsd_server_done(&server);
        if (r < 0) {
                log_error_errno(r, "server loop failed: %m");
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}

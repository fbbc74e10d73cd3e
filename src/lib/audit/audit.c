/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* audit: the kernel's audit status, auditd, rules and sessions. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/netlink.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "cleanup.h"
#include "exec.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "strv.h"

#define AUDIT_LOG_MAX    ((size_t)256 * 1024 * 1024)
#define AUDIT_WAIT_MS    10000
#define AUDIT_POLL_MS    50
#define AUDITCTL_TIMEOUT 10000

static void sleep_ms(unsigned ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Whether CAP_AUDIT_CONTROL is in our effective set. */
static bool have_audit_control(void)
{
        _cleanup_free_ char *text = NULL;
        unsigned long long eff;
        const char *p;

        if (read_file_at(AT_FDCWD, "/proc/self/status", 65536, &text, NULL) < 0 ||
            !(p = strstr(text, "\nCapEff:")) || sscanf(p + 8, "%llx", &eff) != 1)
                return false;
        return eff & (1ull << 30); /* CAP_AUDIT_CONTROL */
}

int audit_status_get(struct audit_state *ret)
{
        _cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
        struct sockaddr_nl addr = {.nl_family = AF_NETLINK};
        struct timeval tv = {2, 0};
        struct nlmsghdr req = {
            .nlmsg_len = NLMSG_LENGTH(0),
            .nlmsg_type = AUDIT_GET,
            .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
            .nlmsg_seq = 1,
        };
        bool got = false;

        if (fd < 0)
                return errno == EINVAL || errno == EAFNOSUPPORT ? -EPROTONOSUPPORT : -errno;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (sendto(fd, &req, req.nlmsg_len, 0, (struct sockaddr *)&addr, sizeof(addr)) < 0)
                return -errno;
        for (;;) {
                union {
                        struct nlmsghdr h;
                        char buf[8192];
                } u;
                ssize_t n = RETRY_EINTR(recv(fd, &u, sizeof(u), 0));

                if (n < 0)
                        return -errno;
                for (struct nlmsghdr *h = &u.h; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
                        if (h->nlmsg_type == NLMSG_ERROR) {
                                const struct nlmsgerr *e = NLMSG_DATA(h);

                                if (e->error == -EPERM && have_audit_control())
                                        /* what the kernel says to a pid
                                         * namespace other than the first */
                                        return -ECONNREFUSED;
                                if (e->error < 0)
                                        return e->error;
                                if (got)
                                        return 0;
                        } else if (h->nlmsg_type == AUDIT_GET &&
                                   h->nlmsg_len >= NLMSG_LENGTH(3 * sizeof(uint32_t) + 4)) {
                                const struct audit_status *s = NLMSG_DATA(h);

                                ret->enabled = s->enabled;
                                ret->pid = (pid_t)s->pid;
                                got = true;
                        }
                }
                if (got)
                        return 0;
        }
}

const char *audit_unusable_reason(int r)
{
        switch (r) {
        case -EPROTONOSUPPORT:
                return "the kernel has no audit support (CONFIG_AUDIT)";
        case -ECONNREFUSED:
                return "the kernel accepts audit control only from the initial pid and user "
                       "namespace, and this process is in another (a container or a strata "
                       "machine)";
        case -EPERM:
                return "no CAP_AUDIT_CONTROL (run as root, outside a container that drops it)";
        default:
                return NULL;
        }
}

static int run_auditctl(const char *const *argv, char **ret_error)
{
        struct exec_request req = {.argv = argv, .timeout_ms = AUDITCTL_TIMEOUT};
        struct exec_result res = {};
        int r;

        r = executor_run(executor_real(), &req, &res);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot run auditctl");
        if (res.status != 0) {
                _cleanup_free_ char *cmd = exec_argv_to_string(argv);
                size_t l = strlen(res.err);

                while (l > 0 && res.err[l - 1] == '\n')
                        res.err[--l] = 0;
                r = set_error_message(ret_error,
                                      res.status == EXEC_STATUS_NOT_FOUND ? -ENOENT : -EIO,
                                      "'%s' failed (status %d): %s", cmd ? cmd : "auditctl",
                                      res.status, res.err[0] ? res.err : "no message");
        }
        exec_result_done(&res);
        return r;
}

int audit_process_starttime(pid_t pid, uint64_t *ret)
{
        _cleanup_free_ char *path = NULL, *text = NULL;
        unsigned long long v;
        const char *p;
        int r;

        if (asprintf(&path, "/proc/%d/stat", (int)pid) < 0)
                return -ENOMEM;
        r = read_file_at(AT_FDCWD, path, 4096, &text, NULL);
        if (r < 0)
                return r;
        /* after "(comm)", which may hold spaces: field 3 on */
        p = strrchr(text, ')');
        if (!p)
                return -EBADMSG;
        p++;
        for (int field = 2; field < 22; field++) {
                p = strchr(p + 1, ' ');
                if (!p)
                        return -EBADMSG;
        }
        if (sscanf(p, " %llu", &v) != 1)
                return -EBADMSG;
        *ret = v;
        return 0;
}

static int process_comm(pid_t pid, char **ret)
{
        _cleanup_free_ char *path = NULL;
        char *text = NULL;
        size_t len;
        int r;

        if (asprintf(&path, "/proc/%d/comm", (int)pid) < 0)
                return -ENOMEM;
        r = read_file_at(AT_FDCWD, path, 256, &text, &len);
        if (r < 0)
                return r;
        while (len > 0 && text[len - 1] == '\n')
                text[--len] = 0;
        *ret = text;
        return 0;
}

/* The config dir a running auditd was given (-c DIR), or /etc/audit. */
static int daemon_conf_dir(pid_t pid, char **ret)
{
        _cleanup_free_ char *path = NULL, *cmd = NULL;
        size_t len;
        int r;

        if (asprintf(&path, "/proc/%d/cmdline", (int)pid) < 0)
                return -ENOMEM;
        r = read_file_at(AT_FDCWD, path, 65536, &cmd, &len);
        if (r < 0)
                return r;
        for (size_t i = 0; i < len; i += strlen(cmd + i) + 1)
                if (streq(cmd + i, "-c") && i + 3 < len) {
                        *ret = strdup(cmd + i + 3);
                        return *ret ? 0 : -ENOMEM;
                }
        *ret = strdup("/etc/audit");
        return *ret ? 0 : -ENOMEM;
}

static int daemon_log_file(const char *conf_dir, char **ret, char **ret_error)
{
        _cleanup_free_ char *conf = NULL, *text = NULL;
        bool write_logs;
        int r;

        if (asprintf(&conf, "%s/auditd.conf", conf_dir) < 0)
                return -ENOMEM;
        r = read_file_at(AT_FDCWD, conf, 1024 * 1024, &text, NULL);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot read '%s'", conf);
        r = audit_conf_parse(text, ret, &write_logs);
        if (r < 0)
                return set_error_message(ret_error, r, "'%s': log_file is not an absolute path",
                                         conf);
        if (!write_logs) {
                free(*ret);
                *ret = NULL;
                return set_error_message(ret_error, -EOPNOTSUPP,
                                         "the audit daemon writes no log ('%s' has write_logs = "
                                         "no), so there is nothing to read the events from",
                                         conf);
        }
        return 0;
}

/* Forks `auditd -n -c conf_dir` in its own session, stderr into a memfd. */
static pid_t daemon_spawn(const char *conf_dir, int err_fd)
{
        pid_t pid = fork();

        if (pid != 0)
                return pid < 0 ? -errno : pid;
        {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                sigset_t none;

                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                (void)setsid();
                if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(err_fd, 2) < 0)
                        _exit(127);
                execlp("auditd", "auditd", "-n", "-c", conf_dir, (char *)NULL);
                dprintf(2, "cannot execute auditd: %s\n", strerror(errno));
                _exit(127);
        }
}

static int daemon_start(const char *conf_dir, struct audit_daemon *d, char **ret_error)
{
        _cleanup_close_ int err_fd = memfd_create("auditd-stderr", MFD_CLOEXEC);
        struct audit_state s = {};
        pid_t pid;
        int r, st;

        if (err_fd < 0)
                return set_error_message(ret_error, -errno, "cannot create a memfd");
        pid = daemon_spawn(conf_dir, err_fd);
        if (pid < 0)
                return set_error_message(ret_error, pid, "cannot fork auditd");
        for (unsigned waited = 0;; waited += AUDIT_POLL_MS) {
                if (waitpid(pid, &st, WNOHANG) == pid) {
                        char buf[512] = "";
                        ssize_t n = pread(err_fd, buf, sizeof(buf) - 1, 0);

                        buf[n > 0 ? n : 0] = 0;
                        buf[strcspn(buf, "\n")] = 0;
                        return set_error_message(
                            ret_error, -EIO,
                            "'auditd -n -c %s' exited (status %d) before it "
                            "registered with the kernel: %s (auditd -f says more)",
                            conf_dir, WIFEXITED(st) ? WEXITSTATUS(st) : 128,
                            buf[0] ? buf : "no message");
                }
                r = audit_status_get(&s);
                if (r >= 0 && s.pid == pid)
                        break;
                if (waited >= AUDIT_WAIT_MS) {
                        (void)kill(pid, SIGKILL);
                        (void)waitpid(pid, NULL, 0);
                        return set_error_message(ret_error, -ETIMEDOUT,
                                                 "'auditd -n -c %s' did not register with the "
                                                 "kernel within %d s",
                                                 conf_dir, AUDIT_WAIT_MS / 1000);
                }
                sleep_ms(AUDIT_POLL_MS);
        }
        d->pid = pid;
        d->started = true;
        (void)audit_process_starttime(pid, &d->starttime);
        return 0;
}

int audit_daemon_acquire(const char *conf_dir, struct audit_daemon *ret, char **ret_error)
{
        struct audit_daemon d = {};
        _cleanup_free_ char *comm = NULL, *dir = NULL;
        struct audit_state s;
        const char *why;
        int r;

        r = audit_status_get(&s);
        if (r < 0) {
                why = audit_unusable_reason(r);
                return set_error_message(ret_error, r, "audit is not usable here: %s",
                                         why ? why : "the kernel's audit status cannot be read");
        }
        if (s.enabled == 2)
                return set_error_message(ret_error, -EPERM,
                                         "audit is not usable here: its rules are locked "
                                         "(enabled 2, auditctl -e 2) until the next boot");
        d.was_enabled = s.enabled;
        if (s.pid > 0) {
                r = process_comm(s.pid, &comm);
                if (r < 0)
                        return set_error_message(ret_error, -EBUSY,
                                                 "audit is not usable here: the audit daemon "
                                                 "registered with the kernel (pid %d) is not a "
                                                 "process of this machine",
                                                 (int)s.pid);
                if (!streq(comm, "auditd"))
                        return set_error_message(ret_error, -EBUSY,
                                                 "audit is not usable here: another audit "
                                                 "daemon owns the kernel's audit: '%s' (pid %d)",
                                                 comm, (int)s.pid);
                d.pid = s.pid;
                (void)audit_process_starttime(s.pid, &d.starttime);
                r = daemon_conf_dir(s.pid, &dir);
        } else {
                dir = strdup(conf_dir ? conf_dir : "/etc/audit");
                r = dir ? 0 : -ENOMEM;
        }
        if (r < 0)
                return set_error_message(ret_error, r, "cannot find the audit daemon's config");
        r = daemon_log_file(dir, &d.log_file, ret_error);
        if (r < 0)
                return r;
        if (!d.pid) {
                r = daemon_start(dir, &d, ret_error);
                if (r < 0) {
                        free(d.log_file);
                        return r;
                }
        }
        r = audit_status_get(&s);
        if (r >= 0 && s.enabled == 0) {
                audit_daemon_release(&d);
                return set_error_message(ret_error, -EPERM,
                                         "audit is not usable here: the kernel's audit is "
                                         "disabled (enabled 0: audit=0 at boot or auditctl "
                                         "-e 0)");
        }
        *ret = d;
        return 0;
}

/* A zombie keeps its session id but does nothing more: a killed run's
 * processes may wait a while for a reaper. */
static bool process_zombie(const char *pid)
{
        _cleanup_free_ char *path = NULL, *text = NULL;
        const char *p;

        if (asprintf(&path, "/proc/%s/stat", pid) < 0 ||
            read_file_at(AT_FDCWD, path, 4096, &text, NULL) < 0)
                return false;
        p = strrchr(text, ')');
        return p && (p[1] == ' ') && (p[2] == 'Z' || p[2] == 'X');
}

static bool pid_alive(pid_t pid, uint64_t starttime)
{
        char name[16];
        uint64_t t;

        snprintf(name, sizeof(name), "%d", (int)pid);
        return audit_process_starttime(pid, &t) >= 0 && (starttime == 0 || t == starttime) &&
               !process_zombie(name);
}

/* SIGTERM, then SIGKILL after 5 s; reaps it when it is our child. */
static void stop_process(pid_t pid, uint64_t starttime, bool child)
{
        (void)kill(pid, SIGTERM);
        for (unsigned waited = 0; waited < 5000; waited += AUDIT_POLL_MS) {
                if (child ? waitpid(pid, NULL, WNOHANG) == pid : !pid_alive(pid, starttime))
                        return;
                sleep_ms(AUDIT_POLL_MS);
        }
        (void)kill(pid, SIGKILL);
        if (child)
                (void)waitpid(pid, NULL, 0);
}

void audit_daemon_release(struct audit_daemon *d)
{
        if (d->started && d->pid > 0) {
                stop_process(d->pid, d->starttime, true);
                if (d->was_enabled == 0)
                        (void)run_auditctl((const char *const[]){"auditctl", "-e", "0", NULL},
                                           NULL);
        }
        free(d->log_file);
        *d = (struct audit_daemon){};
}

int audit_daemon_stop_recorded(pid_t pid, uint64_t starttime, uint32_t was_enabled)
{
        _cleanup_free_ char *comm = NULL;

        if (pid <= 0 || !pid_alive(pid, starttime) || process_comm(pid, &comm) < 0 ||
            !streq(comm, "auditd"))
                return 0;
        stop_process(pid, starttime, false);
        if (was_enabled == 0)
                (void)run_auditctl((const char *const[]){"auditctl", "-e", "0", NULL}, NULL);
        return 1;
}

/* Writes our loginuid again (0 when unset): the kernel starts a new
 * session for us. */
static int new_session(uint32_t *ret)
{
        char buf[32];
        ssize_t n;
        int fd, r = 0;
        unsigned long long uid = 0;

        fd = open("/proc/self/loginuid", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n > 0) {
                buf[n] = 0;
                uid = strtoull(buf, NULL, 10);
        }
        if (n <= 0 || uid >= 4294967295ull)
                uid = 0;
        n = snprintf(buf, sizeof(buf), "%llu", uid);
        if (pwrite(fd, buf, (size_t)n, 0) != n)
                r = -errno;
        close(fd);
        if (r < 0 || !ret)
                return r;
        fd = open("/proc/self/sessionid", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return -EIO;
        buf[n] = 0;
        *ret = (uint32_t)strtoul(buf, NULL, 10);
        return *ret == UINT32_MAX ? -EIO : 0;
}

void audit_session_detach(void)
{
        (void)new_session(NULL);
}

static int rules_change(const struct audit_session *s, const char *op, char **ret_error)
{
        static const char *const arches[] = {"arch=b64", "arch=b32"};
        char ses[32];
        int r = 0;

        snprintf(ses, sizeof(ses), "sessionid=%u", s->sessionid);
        for (size_t i = 0; i < ELEMENTSOF(arches); i++) {
                const char *argv[] = {"auditctl", op,   "always,exit", "-F", arches[i], "-F",
                                      "perm=wa",  "-F", ses,           "-k", s->key,    NULL};
                int k = run_auditctl(argv, ret_error && r == 0 ? ret_error : NULL);

                if (k < 0 && r == 0)
                        r = k;
        }
        return r;
}

int audit_session_begin(const struct audit_daemon *d, const char *key, struct audit_session *ret,
                        char **ret_error)
{
        struct audit_session s = {};
        struct stat st;
        int r;

        r = new_session(&s.sessionid);
        if (r < 0)
                return set_error_message(ret_error, r,
                                         "audit is not usable here: cannot start an audit "
                                         "session (writing /proc/self/loginuid; is "
                                         "loginuid_immutable set?)");
        s.key = strdup(key);
        s.log_file = strdup(d->log_file);
        if (!s.key || !s.log_file) {
                audit_session_done(&s);
                return -ENOMEM;
        }
        s.log_start = stat(s.log_file, &st) >= 0 ? st.st_size : 0;
        s.rules = true;
        r = rules_change(&s, "-a", ret_error);
        if (r < 0) {
                audit_session_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

/* The log from s->log_start on (after a rotation: the rest of .1 first). */
static int read_log(const struct audit_session *s, char **ret, size_t *ret_len)
{
        _cleanup_free_ char *old = NULL, *rotated = NULL, *text = NULL;
        size_t old_len = 0, len = 0;
        struct stat st;
        int r;

        if (stat(s->log_file, &st) < 0)
                return -errno;
        r = read_file_at(AT_FDCWD, s->log_file, AUDIT_LOG_MAX, &text, &len);
        if (r < 0)
                return r;
        if ((off_t)len >= s->log_start) {
                memmove(text, text + s->log_start, len - (size_t)s->log_start + 1);
                *ret_len = len - (size_t)s->log_start;
                *ret = TAKE_PTR(text);
                return 0;
        }
        if (asprintf(&rotated, "%s.1", s->log_file) < 0)
                return -ENOMEM;
        if (read_file_at(AT_FDCWD, rotated, AUDIT_LOG_MAX, &old, &old_len) < 0 ||
            (off_t)old_len < s->log_start)
                old_len = 0;
        *ret = malloc(old_len - (old_len ? (size_t)s->log_start : 0) + len + 1);
        if (!*ret)
                return -ENOMEM;
        if (old_len) {
                old_len -= (size_t)s->log_start;
                memcpy(*ret, old + s->log_start, old_len);
        }
        memcpy(*ret + old_len, text, len + 1);
        *ret_len = old_len + len;
        return 0;
}

int audit_session_end(struct audit_session *s, const pid_t *skip, size_t n_skip,
                      const struct audit_resolver *resolver, struct audit_list *l, char **ret_error)
{
        _cleanup_free_ char *marker = NULL;
        int r;

        r = rules_change(s, "-d", ret_error);
        if (r < 0)
                return r;
        s->rules = false;
        if (asprintf(&marker, "strata-audit-end:%u:%s", s->sessionid, s->key) < 0)
                return -ENOMEM;
        r = run_auditctl((const char *const[]){"auditctl", "-m", marker, NULL}, ret_error);
        if (r < 0)
                return r;
        for (unsigned waited = 0;; waited += AUDIT_POLL_MS) {
                _cleanup_free_ char *text = NULL;
                size_t len = 0;

                r = read_log(s, &text, &len);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot read the audit log '%s'",
                                                 s->log_file);
                if (audit_log_has_marker(text, len, marker)) {
                        r = audit_log_parse(text, len, s->key, skip, n_skip, resolver, l);
                        return r < 0 ? r : 0;
                }
                if (waited >= AUDIT_WAIT_MS)
                        return set_error_message(ret_error, -ETIMEDOUT,
                                                 "the audit daemon did not log the end of the "
                                                 "session in '%s' within %d s",
                                                 s->log_file, AUDIT_WAIT_MS / 1000);
                sleep_ms(AUDIT_POLL_MS);
        }
}

void audit_session_done(struct audit_session *s)
{
        if (s->rules)
                (void)rules_change(s, "-d", NULL);
        free(s->key);
        free(s->log_file);
        *s = (struct audit_session){};
}

/* Whether a live process of session ses exists. */
static bool session_alive(uint32_t ses)
{
        _cleanup_closedir_ DIR *d = opendir("/proc");
        struct dirent *de;

        if (!d)
                return true; /* cannot tell: keep the rule */
        while ((de = readdir(d))) {
                char path[300], buf[32];
                ssize_t n;
                int fd;

                if (de->d_name[0] < '0' || de->d_name[0] > '9' || process_zombie(de->d_name))
                        continue;
                snprintf(path, sizeof(path), "/proc/%s/sessionid", de->d_name);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                n = read(fd, buf, sizeof(buf) - 1);
                close(fd);
                if (n > 0) {
                        buf[n] = 0;
                        if (strtoul(buf, NULL, 10) == ses)
                                return true;
                }
        }
        return false;
}

/* `auditctl -l` line "-a always,exit ..." as the argv that deletes it. */
static int rule_delete(const char *line)
{
        _cleanup_strv_ char **argv = NULL;
        int r;

        r = strv_extend(&argv, "auditctl");
        for (const char *p = line; r >= 0 && *p;) {
                const char *s;

                while (*p == ' ')
                        p++;
                s = p;
                while (*p && *p != ' ')
                        p++;
                if (p > s)
                        r = strv_consume(&argv, strndup(s, (size_t)(p - s)));
        }
        if (r < 0)
                return r;
        if (strv_length(argv) < 3 || !streq(argv[1], "-a"))
                return -EINVAL;
        argv[1][1] = 'd';
        return run_auditctl((const char *const *)argv, NULL);
}

int audit_rules_sweep(const char *prefix, char ***ret_keys)
{
        struct exec_request req = {.argv = (const char *const[]){"auditctl", "-l", NULL},
                                   .timeout_ms = AUDITCTL_TIMEOUT};
        struct exec_result res = {};
        _cleanup_strv_ char **keys = NULL;
        struct audit_state s;
        int r, n = 0;

        r = audit_status_get(&s);
        if (r < 0)
                return r;
        r = executor_run(executor_real(), &req, &res);
        if (r < 0)
                return r;
        if (res.status != 0) {
                exec_result_done(&res);
                return res.status == EXEC_STATUS_NOT_FOUND ? -ENOENT : -EIO;
        }
        for (char *line = res.out, *nl; line && *line; line = nl ? nl + 1 : NULL) {
                _cleanup_free_ char *key = NULL;
                uint32_t ses;

                nl = strchr(line, '\n');
                if (nl)
                        *nl = 0;
                if (audit_rule_parse(line, &key, &ses) < 0 || !startswith(key, prefix) ||
                    session_alive(ses))
                        continue;
                if (rule_delete(line) >= 0) {
                        n++;
                        if (!strv_contains(keys, key) && strv_extend(&keys, key) < 0) {
                                exec_result_done(&res);
                                return -ENOMEM;
                        }
                }
        }
        exec_result_done(&res);
        if (ret_keys)
                *ret_keys = TAKE_PTR(keys);
        return n;
}

/*
 * netcap-exec: run a command with CAP_NET_RAW and CAP_NET_ADMIN as ambient
 * capabilities, so that a process running as a non-root user (the image's
 * UID 1000) can open packet sockets, without giving file capabilities to the
 * shared `node` binary.
 *
 *   netcap-exec node bin/wirescript.ts capture
 *
 * The image installs this program with the file capabilities
 * `cap_net_raw,cap_net_admin=p` (permitted, no effective bit). On exec the
 * kernel grants them only as far as the container's capability bounding set
 * allows (Kubernetes: securityContext.capabilities.add), so:
 *
 * - in the capture pod (NET_RAW and NET_ADMIN added) this program raises them
 *   into the inheritable and ambient sets and execs the command, which then
 *   runs with exactly those two capabilities, as UID 1000;
 * - in a pod that drops every capability it gets none and simply execs the
 *   command (no effective bit, so the exec never fails with EPERM, and the
 *   capture service reports that it cannot open the interface);
 * - it never touches any other capability, user or group.
 *
 * Ambient capabilities (Linux 4.3+) survive the exec of a program without file
 * capabilities, so `node` is not marked privileged: no AT_SECURE mode, and
 * NODE_OPTIONS / NODE_EXTRA_CA_CERTS keep working. With no_new_privs
 * (allowPrivilegeEscalation: false) this still works because the container
 * runtime puts added capabilities in the permitted set of the container's
 * first process (containerd, CRI-O, Docker), so nothing is "gained".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#endif

static const int WANTED[] = {CAP_NET_RAW, CAP_NET_ADMIN};
static const char *const WANTED_NAMES[] = {"CAP_NET_RAW", "CAP_NET_ADMIN"};

int main(int argc, char **argv) {
  if (argc < 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: netcap-exec COMMAND [ARG]...\n"
                    "runs COMMAND with CAP_NET_RAW and CAP_NET_ADMIN as ambient capabilities, when granted\n");
    return 2;
  }
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) != 0) {
    fprintf(stderr, "netcap-exec: capget: %s\n", strerror(errno));
    return 126;
  }
  int have[sizeof WANTED / sizeof WANTED[0]];
  int any = 0;
  for (size_t i = 0; i < sizeof WANTED / sizeof WANTED[0]; i++) {
    const unsigned idx = CAP_TO_INDEX(WANTED[i]);
    const __u32 mask = CAP_TO_MASK(WANTED[i]);
    have[i] = (data[idx].permitted & mask) != 0;
    if (have[i]) {
      data[idx].inheritable |= mask; /* ambient needs permitted and inheritable */
      any = 1;
    }
  }
  if (any && syscall(SYS_capset, &hdr, data) != 0) {
    fprintf(stderr, "netcap-exec: capset: %s\n", strerror(errno));
    return 126;
  }
  for (size_t i = 0; i < sizeof WANTED / sizeof WANTED[0]; i++) {
    if (have[i] && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, WANTED[i], 0, 0) != 0) {
      fprintf(stderr, "netcap-exec: raising ambient %s: %s\n", WANTED_NAMES[i], strerror(errno));
      return 126;
    }
  }
  execvp(argv[1], argv + 1);
  fprintf(stderr, "netcap-exec: %s: %s\n", argv[1], strerror(errno));
  return errno == ENOENT ? 127 : 126;
}

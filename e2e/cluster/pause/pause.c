/*
 * pause: the process of every pod sandbox on the local cluster's node (containerd's sandbox_image,
 * localhost:5000/zeroscale/pause). It holds the pod's namespaces open, reaps children that are
 * re-parented to it (it is PID 1 when the pod shares its process namespace) and exits on SIGINT or
 * SIGTERM. Built static (gcc -static) so the image needs no libc. Written for Zeroscale; the registry
 * that serves the usual pause image cannot be reached from these machines.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
	(void)sig;
	_exit(0);
}

static void on_child(int sig) {
	(void)sig;
	int saved = errno;
	while (waitpid(-1, NULL, WNOHANG) > 0) {
	}
	errno = saved;
}

static int handle(int sig, void (*fn)(int)) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sa.sa_flags = SA_RESTART | (sig == SIGCHLD ? SA_NOCLDSTOP : 0);
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv) {
	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		puts("zeroscale pause 3.10");
		return 0;
	}
	if (getpid() != 1)
		fprintf(stderr, "pause: warning: not PID 1\n");
	if (handle(SIGINT, on_stop) || handle(SIGTERM, on_stop) || handle(SIGCHLD, on_child)) {
		perror("pause: sigaction");
		return 1;
	}
	for (;;)
		pause();
}

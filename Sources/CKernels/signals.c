// Interrupt requests (SIGINT, SIGTERM) while ckpt writes: the handler only records the signal; the engine checks it
// between pieces and unwinds, removing its temp files and releasing its lock, before exiting 128 + signal.
#include "CKernels.h"
#include <pthread.h>
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t received = 0;

static void on_signal(int sig) {
    if (received != 0) {  // a second signal while unwinding: leave at once (the next run cleans up)
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    received = sig;
}

void ckpt_interrupts_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocking read or write returns EINTR, and the caller checks ckpt_interrupt_signal
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    // A parent may have started us with these blocked (posix_spawn keeps the caller's mask): unblock them here.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int ckpt_interrupt_signal(void) { return (int)received; }

void ckpt_interrupt_raise_for_tests(int sig) { received = sig; }

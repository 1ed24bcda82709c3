package dev.fp8q.converter.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class ChunkBuffersTest {

    @Test
    void aFailureIsRethrownOnlyAfterTheCallsStillRunningHaveEnded() throws Exception {
        ForkJoinPool pool = new ForkJoinPool(2);
        try {
            IOException boom = new IOException("disk full");
            CountDownLatch slowStarted = new CountDownLatch(1);
            AtomicBoolean slowEnded = new AtomicBoolean();
            IOException thrown = assertThrows(IOException.class, () -> ChunkBuffers.forEach(pool, List.of("slow", "fails"), item -> {
                if (item.equals("slow")) {
                    slowStarted.countDown();
                    Thread.sleep(300);
                    slowEnded.set(true);
                } else {
                    assertTrue(slowStarted.await(10, TimeUnit.SECONDS));
                    throw boom;
                }
            }));
            assertSame(boom, thrown, "the first failure, unwrapped");
            assertTrue(slowEnded.get(), "the sibling had ended before the failure reached the caller");
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void everyIndexOnceAndNestedLoopsShareThePool() throws Exception {
        ForkJoinPool pool = new ForkJoinPool(3);
        try {
            AtomicInteger[] seen = new AtomicInteger[40];
            for (int i = 0; i < seen.length; i++) {
                seen[i] = new AtomicInteger();
            }
            ChunkBuffers.forEachIndex(pool, 4, outer -> ChunkBuffers.forEachIndex(pool, 10, inner -> seen[outer * 10 + inner].incrementAndGet()));
            for (AtomicInteger s : seen) {
                assertEquals(1, s.get());
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void callsOnThreadsWaitingOnEachOtherKeepEveryWorkerOfThePoolFree() throws Exception {
        ForkJoinPool pool = new ForkJoinPool(2);
        try {
            int n = 6; // more waiting calls than the pool has workers: as pool tasks they would deadlock
            CountDownLatch all = new CountDownLatch(n);
            AtomicInteger sum = new AtomicInteger();
            ChunkBuffers.onThreads(n, k -> {
                all.countDown();
                assertTrue(all.await(10, TimeUnit.SECONDS), "every call runs at once");
                ChunkBuffers.forEachIndex(pool, 10, i -> sum.addAndGet(i));
            });
            assertEquals(n * 45, sum.get());
            IOException boom = new IOException("disk full");
            AtomicBoolean slowEnded = new AtomicBoolean();
            CountDownLatch slowStarted = new CountDownLatch(1); // a call not yet started when one fails is skipped
            IOException thrown = assertThrows(IOException.class, () -> ChunkBuffers.onThreads(2, k -> {
                if (k == 0) {
                    slowStarted.countDown();
                    Thread.sleep(300);
                    slowEnded.set(true);
                } else {
                    assertTrue(slowStarted.await(10, TimeUnit.SECONDS));
                    throw boom;
                }
            }));
            assertSame(boom, thrown);
            assertTrue(slowEnded.get(), "the other call had ended before the failure reached the caller");
        } finally {
            pool.shutdownNow();
        }
    }
}

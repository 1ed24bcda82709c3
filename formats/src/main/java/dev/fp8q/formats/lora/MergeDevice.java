package dev.fp8q.formats.lora;

import dev.fp8q.formats.Checkpoint;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * A device other than the CPU's cores that merges a target exactly as {@link DeltaMerger} does (the same float64
 * operations in the same order, one rounding to float32), so the bytes written never depend on where a merge ran.
 * Callers may be any threads.
 */
public interface MergeDevice extends AutoCloseable {

    /** Whether it merges this target (the dtypes and sizes it reads); the CPU merges the others. */
    boolean takes(Checkpoint.Tensor target, List<LoraMerge.Delta> deltas);

    /** Host memory it writes merged values into fastest (for a GPU: pinned), valid until close. */
    MemorySegment allocate(long bytes);

    /** target + its deltas in order, rounded once to float32, into out (4 * numel bytes, source order). */
    void float32(Checkpoint.Tensor target, List<LoraMerge.Delta> deltas, MemorySegment out);

    /** What it is, for a progress line. */
    String describe();

    @Override
    void close();
}

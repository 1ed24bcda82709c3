package dev.fp8q.formats.safetensors;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/** Where a writer's bytes go: positioned writes from any thread, each byte once, then finish. */
interface Output extends AutoCloseable {

    void write(long position, MemorySegment bytes) throws IOException;

    /** Waits for every write to land, rethrowing a failure; syncs the file to the disk when asked. */
    void finish(boolean sync) throws IOException;

    /** Releases the file, waiting for writes in flight; after a failure too. */
    @Override
    void close() throws IOException;
}

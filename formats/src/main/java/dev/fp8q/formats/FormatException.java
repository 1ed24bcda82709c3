package dev.fp8q.formats;

import java.nio.file.Path;

/**
 * The one error type of the format layer: a named rule, the file, the tensor when there is one, and what
 * is wrong. Its message is the single line the CLI prints.
 */
public final class FormatException extends Exception {

    /** Every rule a reader or writer enforces, one case each. */
    public enum Rule {
        IO("cannot read"),
        HEADER_TOO_SMALL("header too small: file shorter than 8 bytes"),
        HEADER_TOO_LARGE("header too large"),
        INVALID_HEADER_LENGTH("invalid header length"),
        INVALID_HEADER_UTF8("header is not valid UTF-8"),
        INVALID_HEADER_JSON("invalid header JSON"),
        INVALID_OFFSET("invalid data offsets"),
        VALIDATION_OVERFLOW("size overflow"),
        MISALIGNED_SUBBYTE("sub-byte tensor does not end on a byte boundary"),
        TENSOR_INVALID_INFO("byte size does not match shape and dtype"),
        INCOMPLETE_BUFFER("data section does not match the header"),
        TENSOR_NOT_FOUND("no such tensor"),
        INDEX_INVALID("invalid shard index"),
        INDEX_HOSTILE_PATH("shard index entry leaves the folder"),
        INDEX_MISSING_SHARD("shard named by the index is missing"),
        INDEX_MISMATCH("shard index does not match the shards"),
        DUPLICATE_TENSOR("tensor appears in more than one shard"),
        NO_CHECKPOINT("no checkpoint found"),
        PTH_LEGACY("PyTorch checkpoint in the pre-1.6 format, which fp8q does not read (load and torch.save it again with torch >= 1.6)"),
        PTH_INVALID("invalid PyTorch zip checkpoint"),
        PTH_HOSTILE_PATH("zip entry leaves the archive's folder"),
        PICKLE_INVALID("malformed pickle"),
        PICKLE_FORBIDDEN("pickle names a global outside the allow-list (fp8q loads only tensors and plain containers)"),
        WRITE_INVALID("cannot write"),
        LORA_UNMATCHED("LoRA key matches no weight of the model"),
        LORA_SHAPE("LoRA shape does not fit its target"),
        LORA_INVALID("invalid LoRA file");

        private final String summary;

        Rule(String summary) {
            this.summary = summary;
        }

        public String summary() {
            return summary;
        }
    }

    private final Rule rule;
    private final Path file;
    private final String tensor;
    private final String detail;

    public FormatException(Rule rule, Path file, String tensor, String detail) {
        this(rule, file, tensor, detail, null);
    }

    public FormatException(Rule rule, Path file, String tensor, String detail, Throwable cause) {
        super(message(rule, file, tensor, detail), cause);
        this.rule = rule;
        this.file = file;
        this.tensor = tensor;
        this.detail = detail;
    }

    private static String message(Rule rule, Path file, String tensor, String detail) {
        StringBuilder sb = new StringBuilder();
        if (file != null) {
            sb.append(file).append(": ");
        }
        if (tensor != null) {
            sb.append("tensor '").append(tensor).append("': ");
        }
        sb.append(rule.summary());
        if (detail != null && !detail.isEmpty()) {
            sb.append(" (").append(detail).append(')');
        }
        return sb.toString().replace('\n', ' ');
    }

    public Rule rule() {
        return rule;
    }

    public Path file() {
        return file;
    }

    public String tensor() {
        return tensor;
    }

    public String detail() {
        return detail;
    }

    /** The same error about another file (the parser works on bytes and learns the file later). */
    public FormatException withFile(Path other) {
        return new FormatException(rule, other, tensor, detail, getCause());
    }
}

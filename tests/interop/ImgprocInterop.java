/*
 * ImgprocInterop.java - a Java client of imgprocd, written against the classes
 * remotetea's jrpcgen generates from the installed imgproc.x, and nothing else
 * (the generated package imgproc.rpc and the org.acplt.oncrpc runtime).
 *
 * tests/interop/run.sh generates, compiles and runs it against a real imgprocd;
 * it prints one "key=value" line per fact it learns (and "# ..." comments), and
 * the shell compares the values with what the C client and libvips' own tools
 * say.  It exits 0 once every call has been made, 1 on an exception.
 *
 *   java ImgprocInterop PROGRAM PHOTO OUTDIR
 *
 * The server is found as any ONC RPC client finds it: by asking rpcbind (its
 * portmapper protocol, version 2) on 127.0.0.1 for PROGRAM version 1 over TCP.
 */
import imgproc.rpc.*;

import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.MessageDigest;

import org.acplt.oncrpc.OncRpcClientAuthUnix;
import org.acplt.oncrpc.OncRpcException;
import org.acplt.oncrpc.OncRpcProtocols;
import org.acplt.oncrpc.OncRpcTcpClient;
import org.acplt.oncrpc.OncRpcTimeoutException;

public class ImgprocInterop {
    static final String HOST = "127.0.0.1";
    /* The AUTH_SYS identity the task calls claim: the server names the owner
     * "uid@machine" after it. */
    static final String MACHINE = "java-interop";
    static final int UID = 4321;

    static void out(String key, Object value) {
        System.out.println(key + "=" + value);
    }

    static String u32(int v) {          /* XDR unsigned int: a Java int */
        return Integer.toUnsignedString(v);
    }

    static String u64(long v) {         /* XDR unsigned hyper: a Java long */
        return Long.toUnsignedString(v);
    }

    static imgprocClient connect(int program, int protocol) throws OncRpcException, IOException {
        /* Port 0: the stub asks the portmapper on HOST for the program's port. */
        return new imgprocClient(InetAddress.getByName(HOST), program, imgproc.IMGPROC_V1, protocol);
    }

    /* Every member must be set before a call: jrpcgen's encoders write each
     * field as it is, and a null String, array or struct is a
     * NullPointerException, not an empty value. */
    static ip_output jpegDefaults() {
        ip_output o = new ip_output();
        o.format = ip_format.IP_FMT_AUTO;   /* the input's format: JPEG */
        o.quality = 0;                      /* server default */
        o.strip = false;
        return o;
    }

    static ip_step grayscale() {
        ip_step s = new ip_step();
        s.op = ip_op.IP_OP_GRAYSCALE;       /* a void arm */
        return s;
    }

    static ip_step resize(int w, int h) {
        ip_step s = new ip_step();
        s.op = ip_op.IP_OP_RESIZE;
        s.resize = new ip_resize_params();
        s.resize.width = w;
        s.resize.height = h;
        s.resize.fit = ip_fit.IP_FIT_INSIDE;
        s.resize.enlarge = false;
        return s;
    }

    static ip_step blur(double sigma) {
        ip_step s = new ip_step();
        s.op = ip_op.IP_OP_BLUR;
        s.sigma = sigma;
        return s;
    }

    static ip_process_args process(byte[] image, ip_step... steps) {
        ip_process_args a = new ip_process_args();
        a.image = new ip_image(image);
        a.steps = steps;
        a.output = jpegDefaults();
        return a;
    }

    static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b)
            sb.append(String.format("%02x", x & 0xff));
        return sb.toString();
    }

    public static void main(String[] argv) throws Exception {
        if (argv.length != 3) {
            System.err.println("usage: java ImgprocInterop PROGRAM PHOTO OUTDIR");
            System.exit(2);
        }
        int program = Integer.parseInt(argv[0]);
        byte[] photo = Files.readAllBytes(Paths.get(argv[1]));
        Path outDir = Paths.get(argv[2]);
        try {
            run(program, photo, outDir);
        } catch (Exception e) {
            System.out.println("# exception: " + e);
            e.printStackTrace(System.out);
            System.exit(1);
        }
        out("finished", "yes");
    }

    static void run(int program, byte[] photo, Path outDir) throws Exception {
        imgprocClient c = connect(program, OncRpcProtocols.ONCRPC_TCP);
        out("port", c.getClient().getPort());           /* what rpcbind told */

        /* ---- the timeout.  remotetea waits 30 s for a reply by default;
         * TASK_WAIT may block for IP_MAX_WAIT (60) seconds and a synchronous
         * image call may work for the server's max_request_seconds (60 by
         * default), so a client that keeps the default would see
         * OncRpcTimeoutException on calls the server is still answering.
         * Set it above both, with a margin for the transfer. */
        out("default_timeout_ms", c.getClient().getTimeout());

        /* ---- NULL */
        c.IP_NULL_1();
        out("null", "ok");

        /* ---- SERVER_INFO */
        ip_server_info_res si = c.SERVER_INFO_1();
        out("info_status", si.status);
        ip_server_info_all all = si.info;
        out("server_version", all.info.server_version.value);
        out("vips_version", all.info.vips_version.value);
        StringBuilder ops = new StringBuilder();
        for (ip_op_desc d : all.info.ops)
            ops.append(ops.length() > 0 ? "," : "").append(d.name).append(":").append(d.op);
        out("ops", ops);
        StringBuilder fmts = new StringBuilder();
        for (ip_name n : all.info.output_formats)
            fmts.append(fmts.length() > 0 ? "," : "").append(n.value);
        out("output_formats", fmts);
        out("max_request_bytes", u64(all.info.limits.max_request_bytes));
        out("max_pixels", u64(all.info.limits.max_pixels));
        out("max_steps", u32(all.info.limits.max_steps));
        out("max_upload_bytes", u64(all.info.limits.max_upload_bytes));
        out("max_request_seconds", u32(all.guard.max_request_seconds));
        out("state_dir", all.state_dir);

        int waitSeconds = Math.max(imgproc.IP_MAX_WAIT, all.guard.max_request_seconds);
        int timeoutMs = (waitSeconds + 10) * 1000;
        c.getClient().setTimeout(timeoutMs);
        out("timeout_ms", c.getClient().getTimeout());

        /* ---- NULL over UDP too (the portmapper has a UDP port for it) */
        imgprocClient u = connect(program, OncRpcProtocols.ONCRPC_UDP);
        u.IP_NULL_1();
        out("null_udp", "ok");
        u.close();

        /* ---- PROCESS: grayscale, then into a 400x400 box */
        ip_image_res r = c.PROCESS_1(process(photo, grayscale(), resize(400, 400)));
        out("process_status", r.status);
        if (r.status == ip_status.IP_OK) {
            out("process_width", u32(r.ok.width));
            out("process_height", u32(r.ok.height));
            out("process_bands", u32(r.ok.bands));
            out("process_format", r.ok.format);
            Files.write(outDir.resolve("process.jpg"), r.ok.image.value);
            out("process_bytes", r.ok.image.value.length);
        } else {
            out("process_message", r.message);
        }

        /* Refusals come back as the union's default arm: a status and words. */
        r = c.PROCESS_1(process(photo, blur(0.0)));
        out("bad_sigma_status", r.status);
        out("bad_sigma_message", r.message);
        ip_step unknown = new ip_step();
        unknown.op = 99;                    /* no such ip_op: the default (void) arm */
        r = c.PROCESS_1(process(photo, unknown));
        out("unknown_op_status", r.status);
        out("unknown_op_message", r.message);

        /* ---- a task: create (upload, held), upload, start, wait, result */
        c.getClient().setAuth(new OncRpcClientAuthUnix(MACHINE, UID, UID));
        ip_task_create_args ca = new ip_task_create_args();
        ca.source = new ip_task_source();
        ca.source.kind = ip_source_kind.IP_SOURCE_UPLOAD;
        ca.source.size = photo.length;
        ca.spec = new ip_task_spec();
        ca.spec.steps = new ip_step[] { grayscale(), resize(400, 400) };
        ca.spec.output = jpegDefaults();
        ca.token = "";
        ca.hold = true;
        ip_task_create_res cr = c.TASK_CREATE_1(ca);
        out("create_status", cr.status);
        if (cr.status != ip_status.IP_OK)
            throw new IllegalStateException("TASK_CREATE: " + cr.message);
        ip_task_id id = cr.created.id;
        out("task_id", u64(id.value));
        out("create_state", cr.created.state);

        /* Chunks of 128 KiB (the protocol allows IP_MAX_CHUNK = 1 MiB): a
         * photo of a few hundred KB then takes several, at growing offsets. */
        final int chunk = 128 * 1024;
        int chunks = 0;
        ip_task_upload_res ur = null;
        for (int off = 0; off < photo.length; off += chunk) {
            ip_task_upload_args ua = new ip_task_upload_args();
            ua.id = id;
            ua.offset = off;
            ua.data = java.util.Arrays.copyOfRange(photo, off, Math.min(photo.length, off + chunk));
            ur = c.TASK_UPLOAD_1(ua);
            chunks++;
            if (ur.status != ip_status.IP_OK)
                throw new IllegalStateException("TASK_UPLOAD at " + off + ": " + ur.message);
        }
        out("upload_chunks", chunks);
        out("upload_received", u64(ur.uploaded.received));
        out("upload_size", u64(ur.uploaded.size));
        out("upload_state", ur.uploaded.state);
        out("upload_sha256", ur.uploaded.sha256);
        out("local_sha256", hex(MessageDigest.getInstance("SHA-256").digest(photo)));

        ip_task_res sr = c.TASK_START_1(id);
        out("start_status", sr.status);
        out("start_state", sr.state);

        /* TASK_WAIT blocks until the state differs from "seen", for at most
         * IP_MAX_WAIT seconds a call: this is why the timeout was raised. */
        ip_task_info_res wr = null;
        int state = sr.state, waits = 0;
        while (waits < 20 && state != ip_task_state.IP_TASK_DONE
               && state != ip_task_state.IP_TASK_FAILED && state != ip_task_state.IP_TASK_CANCELLED) {
            ip_task_wait_args wa = new ip_task_wait_args();
            wa.id = id;
            wa.seen = state;
            wa.timeout = imgproc.IP_MAX_WAIT;
            wr = c.TASK_WAIT_1(wa);
            waits++;
            if (wr.status != ip_status.IP_OK)
                throw new IllegalStateException("TASK_WAIT: " + wr.message);
            state = wr.info.state;
        }
        out("wait_calls", waits);
        out("task_state", state);
        if (wr != null) {
            out("task_width", u32(wr.info.width));
            out("task_height", u32(wr.info.height));
            out("task_bands", u32(wr.info.bands));
            out("task_result_size", u64(wr.info.result_size));
            out("task_owner", wr.info.owner);
            out("task_steps", wr.info.steps);
            out("task_error", wr.info.error);
        }

        /* The result in 4 KiB chunks (a real client asks for IP_MAX_CHUNK),
         * so that even a small result takes several, until the total is in. */
        java.io.ByteArrayOutputStream result = new java.io.ByteArrayOutputStream();
        long total = -1;
        int rchunks = 0;
        ip_task_chunk last = null;
        while (total < 0 || result.size() < total) {
            ip_task_result_args ra = new ip_task_result_args();
            ra.id = id;
            ra.offset = result.size();
            ra.count = 4096;
            ip_task_result_res rr = c.TASK_RESULT_1(ra);
            if (rr.status != ip_status.IP_OK)
                throw new IllegalStateException("TASK_RESULT: " + rr.status + " " + rr.message);
            if (rr.chunk.data.length == 0)
                throw new IllegalStateException("TASK_RESULT: empty chunk before the end");
            result.write(rr.chunk.data);
            total = rr.chunk.total;
            last = rr.chunk;
            rchunks++;
        }
        Files.write(outDir.resolve("task.jpg"), result.toByteArray());
        out("result_chunks", rchunks);
        out("result_total", u64(total));
        out("result_width", u32(last.width));
        out("result_height", u32(last.height));
        out("result_bands", u32(last.bands));
        out("result_format", last.format);

        ip_task_res dr = c.TASK_DELETE_1(id);
        out("delete_status", dr.status);
        out("delete_state", dr.state);
        ip_task_info_res gone = c.TASK_STATUS_1(id);
        out("deleted_status", gone.status);

        /* ---- batched calls.  The generated TASK_SUBMIT_1 would wait for a
         * reply that never comes (until the timeout); remotetea's own
         * batchCall buffers the call instead, and TASK_COLLECT_1, an ordinary
         * call, flushes the batch and brings the one reply. */
        OncRpcTcpClient tcp = (OncRpcTcpClient) c.getClient();
        String[] tokens = { "java-batch-1", "java-batch-2" };
        for (String t : tokens) {
            ip_task_create_args ba = new ip_task_create_args();
            ba.source = new ip_task_source();
            ba.source.kind = ip_source_kind.IP_SOURCE_INLINE;
            ba.source.image = new ip_image(photo);
            ba.spec = new ip_task_spec();
            ba.spec.steps = new ip_step[] { grayscale() };
            ba.spec.output = jpegDefaults();
            ba.token = t;
            ba.hold = true;                 /* they need not run */
            tcp.batchCall(imgproc.TASK_SUBMIT_1, ba, false);
        }
        ip_batch_res br = c.TASK_COLLECT_1();
        out("collect_status", br.status);
        if (br.status == ip_status.IP_OK) {
            StringBuilder items = new StringBuilder();
            for (ip_batch_outcome o : br.report.items) {
                items.append(items.length() > 0 ? "," : "").append(o.token).append(":").append(o.result.status);
                if (o.result.status == ip_status.IP_OK)
                    c.TASK_DELETE_1(o.result.created.id);
            }
            out("collect_items", items);
            out("collect_skipped", u32(br.report.skipped));
        }

        /* ---- the timeout, shown at a small scale: a task held in CREATED
         * never changes, so TASK_WAIT on it blocks for its full timeout (1 s
         * here; 60 s at most).  A client timeout below it cuts the call, as
         * remotetea's default 30 s would cut a 60 s TASK_WAIT; one above it
         * gets the answer. */
        ip_task_create_args ha = new ip_task_create_args();
        ha.source = new ip_task_source();
        ha.source.kind = ip_source_kind.IP_SOURCE_INLINE;
        ha.source.image = new ip_image(photo);
        ha.spec = new ip_task_spec();
        ha.spec.steps = new ip_step[] { grayscale() };
        ha.spec.output = jpegDefaults();
        ha.token = "";
        ha.hold = true;
        ip_task_create_res hr = c.TASK_CREATE_1(ha);
        if (hr.status != ip_status.IP_OK)
            throw new IllegalStateException("TASK_CREATE (held): " + hr.message);
        ip_task_wait_args hw = new ip_task_wait_args();
        hw.id = hr.created.id;
        hw.seen = ip_task_state.IP_TASK_CREATED;
        hw.timeout = 1;

        imgprocClient shortc = connect(program, OncRpcProtocols.ONCRPC_TCP);
        shortc.getClient().setAuth(new OncRpcClientAuthUnix(MACHINE, UID, UID));
        shortc.getClient().setTimeout(300);     /* ms: below the 1 s wait */
        long t0 = System.nanoTime();
        try {
            ip_task_info_res x = shortc.TASK_WAIT_1(hw);
            out("short_timeout", "answered status " + x.status);
        } catch (OncRpcTimeoutException e) {
            out("short_timeout", "cut");
        }
        out("short_timeout_ms", (System.nanoTime() - t0) / 1000000);
        shortc.close();

        t0 = System.nanoTime();                 /* c: the raised timeout */
        ip_task_info_res lw = c.TASK_WAIT_1(hw);
        out("long_timeout", lw.status == ip_status.IP_OK ? "answered" : "status " + lw.status);
        out("long_timeout_state", lw.status == ip_status.IP_OK ? lw.info.state : -1);
        out("long_timeout_ms", (System.nanoTime() - t0) / 1000000);
        c.TASK_DELETE_1(hw.id);

        c.close();
    }
}

using Microsoft.Win32.SafeHandles;

namespace CrmEngine.Core.Storage;

/// <summary>
/// One of the two database files (data file, journal) as the engine hands it to LiteDB.
/// <para>
/// Why: LiteDB 5.0.20 opened on a file name fsyncs its journal every time its writer queue runs empty, and
/// that writer runs inline on the thread that queues a page, so a commit fsyncs once per page (thousands
/// of syncs for a bulk batch; measured: 2,445 fsyncs for 4,000 creates). LiteDB only forces a sync on a
/// <see cref="FileStream"/>; on any other stream it calls <see cref="Flush"/>, which here decides:
/// </para>
/// <list type="bullet">
/// <item>the data file (written only by checkpoints, which then truncate the journal) is synced on every
/// flush, so a checkpoint never drops journal pages that are not durable in the data file;</item>
/// <item>the journal is not synced on flush: <see cref="DurableFlush"/> syncs it once per group before any
/// write is acknowledged. To keep LiteDB's crash recovery sound (it replays a transaction only when the page
/// marked "confirmed" is in the journal, the last page of every commit), the journal is synced BEFORE a
/// confirmed page is written, so a confirmed page never reaches the disk ahead of the pages it confirms.</item>
/// </list>
/// <para>
/// Concurrency (why the first attempt, a5c4c87, failed in CI with "page type must be collection page"): LiteDB
/// opened on files gives every reader thread a FileStream of its own, but a stream handed over in
/// <c>EngineSettings</c> is ONE instance shared by all readers and the journal writer, each of which does
/// "set Position, then Read/Write". Two threads interleaving those two steps read a page from the other's
/// position. Here the position is kept per thread and every read and write is positional (pread/pwrite on one
/// handle), so concurrent readers and the writer never share a position.
/// </para>
/// Relies on the LiteDB 5 page layout (header byte 18 is the "confirmed" flag), checked by a test that reads it
/// back from a journal.
/// </summary>
internal sealed class LiteDbFileStream : Stream
{
    internal const int PageSize = 8192;

    /// <summary>Offset of the "transaction confirmed" flag in a LiteDB 5 page header (BasePage.P_IS_CONFIRMED).</summary>
    internal const int ConfirmedFlagOffset = 18;

    private readonly SafeFileHandle _handle;
    private readonly FileStream _syncer;
    private readonly bool _isJournal;
    private readonly ThreadLocal<long> _position = new();
    private int _barriers;

    private LiteDbFileStream(SafeFileHandle handle, bool isJournal)
    {
        _handle = handle;
        _isJournal = isJournal;
        // Only for fsync (Flush(true) on the shared handle); its own position is never used.
        _syncer = new FileStream(handle, FileAccess.ReadWrite, bufferSize: 0);
    }

    /// <summary>Syncs done before a confirmed journal page (tests).</summary>
    public int Barriers => Volatile.Read(ref _barriers);

    /// <summary>
    /// Opens (or creates) the file with the sharing LiteDB itself uses for a writable file (others may read: the
    /// backup copies the data file while the engine runs; an exclusive open, <see cref="CrmDatabase.IsInUse(string)"/>, fails).
    /// </summary>
    public static LiteDbFileStream Open(string path, bool isJournal) =>
        new(File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, FileOptions.RandomAccess), isJournal);

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => true;
    public override long Length => RandomAccess.GetLength(_handle);

    /// <summary>This thread's position (each thread seeks and reads or writes on its own).</summary>
    public override long Position
    {
        get => _position.Value;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _position.Value = value;
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var position = _position.Value;
        var total = 0;
        while (total < buffer.Length)
        {
            var read = RandomAccess.Read(_handle, buffer[total..], position + total);
            if (read == 0)
            {
                break;
            }

            total += read;
        }

        _position.Value = position + total;
        return total;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (_isJournal && buffer.Length == PageSize && buffer[ConfirmedFlagOffset] != 0)
        {
            _syncer.Flush(flushToDisk: true);
            Interlocked.Increment(ref _barriers);
        }

        var position = _position.Value;
        RandomAccess.Write(_handle, buffer, position);
        _position.Value = position + buffer.Length;
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position.Value + offset,
            _ => Length + offset,
        };
        return Position;
    }

    public override void SetLength(long value) => RandomAccess.SetLength(_handle, value);

    public override void Flush()
    {
        if (!_isJournal)
        {
            _syncer.Flush(flushToDisk: true);
        }
    }

    /// <summary>Syncs the file to disk.</summary>
    public void Sync() => _syncer.Flush(flushToDisk: true);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _syncer.Dispose(); // closes the handle it wraps
            _handle.Dispose();
            _position.Dispose();
        }

        base.Dispose(disposing);
    }
}

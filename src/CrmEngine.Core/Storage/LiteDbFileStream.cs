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
/// flush, as before, so a checkpoint never drops journal pages that are not durable in the data file;</item>
/// <item>the journal is not synced on flush: <see cref="DurableFlush"/> syncs it once per group before any
/// write is acknowledged. To keep LiteDB's crash recovery sound (it replays a transaction only when the page
/// marked "confirmed" is in the journal, the last page of every commit), the journal is synced BEFORE a
/// confirmed page is written, so a confirmed page never reaches the disk ahead of the pages it confirms.</item>
/// </list>
/// Two syncs per commit instead of one per page. Relies on the LiteDB 5 page layout (header byte 18 is the
/// "confirmed" flag), checked by a test that reads it back from a journal.
/// </summary>
internal sealed class LiteDbFileStream : Stream
{
    internal const int PageSize = 8192;

    /// <summary>Offset of the "transaction confirmed" flag in a LiteDB 5 page header (BasePage.P_IS_CONFIRMED).</summary>
    internal const int ConfirmedFlagOffset = 18;

    private readonly FileStream _file;
    private readonly bool _isJournal;

    private LiteDbFileStream(FileStream file, bool isJournal)
    {
        _file = file;
        _isJournal = isJournal;
    }

    /// <summary>Syncs done before a confirmed journal page (tests).</summary>
    public int Barriers { get; private set; }

    /// <summary>
    /// Opens (or creates) the file with the sharing LiteDB itself uses for a writable file (others may read: the
    /// backup copies the data file while the engine runs; an exclusive open, <see cref="CrmDatabase.IsInUse(string)"/>, fails).
    /// </summary>
    public static LiteDbFileStream Open(string path, bool isJournal) =>
        new(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0, FileOptions.RandomAccess), isJournal);

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => true;
    public override long Length => _file.Length;

    public override long Position
    {
        get => _file.Position;
        set => _file.Position = value;
    }

    public override int Read(byte[] buffer, int offset, int count) => _file.Read(buffer, offset, count);

    public override void Write(byte[] buffer, int offset, int count)
    {
        if (_isJournal && count == PageSize && buffer[offset + ConfirmedFlagOffset] != 0)
        {
            _file.Flush(flushToDisk: true);
            Barriers++;
        }

        _file.Write(buffer, offset, count);
    }

    public override long Seek(long offset, SeekOrigin origin) => _file.Seek(offset, origin);

    public override void SetLength(long value) => _file.SetLength(value);

    public override void Flush() => _file.Flush(flushToDisk: !_isJournal);

    /// <summary>Syncs the file to disk.</summary>
    public void Sync() => _file.Flush(flushToDisk: true);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _file.Dispose();
        }

        base.Dispose(disposing);
    }
}

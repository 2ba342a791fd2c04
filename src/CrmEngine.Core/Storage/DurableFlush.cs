using System.Reflection;
using CrmEngine.Abstractions.Store;
using LiteDB;

namespace CrmEngine.Core.Storage;

/// <summary>What the flush needs to know about LiteDB's background journal writer.</summary>
internal interface IDiskWriterProbe
{
    /// <summary>Waits up to <paramref name="timeout"/> for the writer's queue to be empty; true when it is.</summary>
    bool WaitEmpty(TimeSpan timeout);

    /// <summary>The error the writer stopped with (it then never empties its queue again), or null.</summary>
    Exception? Error { get; }
}

/// <summary>
/// LiteDB 5.0.x's <c>DiskWriterQueue</c>, found by reflection: its <c>_queueIsEmpty</c> event and
/// the <c>_exception</c> it records when it fails. Its own <c>Wait()</c> is not used: it has no
/// timeout and returns when the queue is signalled empty, which is before LiteDB syncs the file.
/// </summary>
internal sealed class LiteDbDiskWriterProbe : IDiskWriterProbe
{
    private readonly ManualResetEventSlim _empty;
    private readonly object _queue;
    private readonly FieldInfo _exception;

    private LiteDbDiskWriterProbe(object queue, ManualResetEventSlim empty, FieldInfo exception)
    {
        _queue = queue;
        _empty = empty;
        _exception = exception;
    }

    public bool WaitEmpty(TimeSpan timeout) => _empty.Wait(timeout);

    public Exception? Error => _exception.GetValue(_queue) as Exception;

    /// <summary>Finds the queue of <paramref name="db"/>; throws <see cref="StoreException"/> naming what is missing.</summary>
    public static LiteDbDiskWriterProbe Find(LiteDatabase db)
    {
        const BindingFlags flags = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;
        var step = "LiteDatabase._engine";
        try
        {
            var engine = typeof(LiteDatabase).GetField("_engine", flags)?.GetValue(db);
            step = "LiteEngine._disk";
            var disk = engine?.GetType().GetField("_disk", flags)?.GetValue(engine);
            step = "DiskService.Queue";
            var lazy = disk?.GetType().GetProperty("Queue", flags)?.GetValue(disk);
            var queue = lazy?.GetType().GetProperty("Value")?.GetValue(lazy);
            step = "DiskWriterQueue._queueIsEmpty";
            var empty = queue?.GetType().GetField("_queueIsEmpty", flags)?.GetValue(queue) as ManualResetEventSlim;
            step = "DiskWriterQueue._exception";
            var exception = queue?.GetType().GetField("_exception", flags);
            if (queue is not null && empty is not null && exception is not null && typeof(Exception).IsAssignableFrom(exception.FieldType))
            {
                return new LiteDbDiskWriterProbe(queue, empty, exception);
            }
        }
        catch (Exception ex) when (ex is TargetInvocationException or MemberAccessException or InvalidOperationException or ArgumentException)
        {
            throw Missing(step, ex);
        }

        throw Missing(step, null);
    }

    private static StoreException Missing(string step, Exception? inner) => new(
        $"The store cannot guarantee that acknowledged writes are on disk: LiteDB {typeof(LiteDatabase).Assembly.GetName().Version} " +
        $"does not have the internal journal writer this engine waits for (missing: {step}; built for LiteDB 5.0.20). " +
        "Refusing to start. Use the LiteDB version the engine was built with.", inner!);
}

/// <summary>
/// Makes a committed group durable before it is acknowledged: waits (bounded, watching the writer's
/// recorded error) until LiteDB's background writer has handed every journal page to the OS, then
/// fsyncs the journal (<c>name-log.db</c>) and, when it changed, the data file with handles of its own.
/// </summary>
internal sealed class DurableFlush
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(200);
    private readonly string _dataFile;
    private readonly string _logFile;
    private (long Length, DateTime Written) _dataSeen;

    public DurableFlush(IDiskWriterProbe probe, string dataFile, TimeSpan timeout)
    {
        Probe = probe;
        Timeout = timeout;
        _dataFile = dataFile;
        _logFile = CrmDatabase.LogFileOf(dataFile);
        _dataSeen = Stamp(dataFile);
    }

    public IDiskWriterProbe Probe { get; set; }

    public TimeSpan Timeout { get; set; }

    /// <summary>Called with the path of each file after it was fsynced (tests).</summary>
    public Action<string>? Synced { get; set; }

    /// <summary>Throws <see cref="StoreException"/> when the pages cannot be confirmed on disk.</summary>
    public void Run()
    {
        var started = Environment.TickCount64;
        while (true)
        {
            if (Probe.Error is { } failed)
            {
                throw new StoreException(
                    $"The write is not confirmed on disk: LiteDB's journal writer failed ({failed.GetType().Name}: {failed.Message}). " +
                    "It may not be stored; no further write can succeed until the engine is restarted (check free disk space and disk errors).", failed);
            }

            var left = Timeout - TimeSpan.FromMilliseconds(Environment.TickCount64 - started);
            if (left <= TimeSpan.Zero)
            {
                throw new StoreException(
                    $"The write is not confirmed on disk: LiteDB's journal writer did not finish within {Timeout.TotalSeconds:0.###} s " +
                    "(Store:DiskSyncTimeout). It may not be stored; check the disk.");
            }

            if (Probe.WaitEmpty(left < Poll ? left : Poll))
            {
                // The queue signals empty before LiteDB syncs; a failure may also have been recorded meanwhile.
                if (Probe.Error is null)
                {
                    break;
                }
            }
        }

        try
        {
            Sync(_logFile);
            var data = Stamp(_dataFile);
            if (data != _dataSeen)
            {
                Sync(_dataFile);
                _dataSeen = data;
            }
        }
        catch (IOException ex)
        {
            throw new StoreException($"The write is not confirmed on disk: syncing the database files failed ({ex.Message}). It may not be stored.", ex);
        }
    }

    private void Sync(string file)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
        }
        catch (FileNotFoundException)
        {
            return; // no journal (nothing written since the last checkpoint removed it)
        }

        using (stream)
        {
            stream.Flush(flushToDisk: true);
        }

        Synced?.Invoke(file);
    }

    private static (long, DateTime) Stamp(string file)
    {
        var info = new FileInfo(file);
        return info.Exists ? (info.Length, info.LastWriteTimeUtc) : (-1, default);
    }
}

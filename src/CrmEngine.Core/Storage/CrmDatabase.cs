using System.Globalization;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using LiteDB;
using LiteDB.Engine;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrmEngine.Core.Storage;

/// <summary>
/// Owns the one LiteDB database file of the engine (<c>Connection=direct</c>) and the writer
/// thread every write runs on. Reads may run on any thread. Plugins never see this type.
/// </summary>
public sealed class CrmDatabase : IDisposable
{
    /// <summary>
    /// Schema version written to <c>_meta</c>; a file with a newer version is refused. 2: activities carry the due-order
    /// sort key (<see cref="IndexReads.ActivityDueField"/>); a version-1 file gets it written at its first open.
    /// </summary>
    public const int SchemaVersion = 2;

    /// <summary>The product marker in <c>_meta</c> that tells a CrmEngine database from any other LiteDB file.</summary>
    public const string ProductMarker = "CrmEngine";

    internal const string MetaCollection = "_meta";
    internal const string ChangesCollection = "_changes";
    internal const string AuditCollection = "_audit";
    internal const string DeliveriesCollection = "_deliveries";
    internal const string PluginsCollection = "_plugins";

    private readonly LiteDatabase _db;
    private readonly LiteDbFileStream? _dataFile;
    private readonly LiteDbFileStream? _logFile;
    private readonly WriteExecutor _executor;
    private readonly ILogger _logger;
    private readonly DurableFlush _flush;
    private readonly Dictionary<string, CollectionClaim> _claims = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, CollectionClaim> _claimsByEntity = new(StringComparer.OrdinalIgnoreCase);
    private WriteTransaction? _current;
    private long _lastSequence;
    private int _disposed;

    /// <param name="options">Where the file is.</param>
    /// <param name="timeProvider">Time for records, change feed and audit (default: system time).</param>
    /// <param name="logger">Optional logger.</param>
    /// <param name="contentRoot">Folder a relative <see cref="StoreOptions.DataDirectory"/> is taken from (default: the current folder).</param>
    public CrmDatabase(StoreOptions options, TimeProvider? timeProvider = null, ILogger<CrmDatabase>? logger = null, string? contentRoot = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        TimeProvider = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        FilePath = ResolveFilePath(options, contentRoot);
        Directory.CreateDirectory(Path.GetDirectoryName(FilePath)!);
        Mapper = CrmBsonMapper.Create();
        try
        {
            // LiteDB runs on the engine's own file streams (see LiteDbFileStream: one journal sync per commit, not per
            // page; positional reads, so concurrent readers never share a position).
            _dataFile = LiteDbFileStream.Open(FilePath, isJournal: false);
            _logFile = LiteDbFileStream.Open(LogFileOf(FilePath), isJournal: true);
            var engine = new LiteEngine(new EngineSettings
            {
                DataStream = _dataFile,
                LogStream = _logFile,
                Collation = new Collation(CollationName),
            });
            _db = new LiteDatabase(engine, Mapper, disposeOnClose: true);
        }
        catch (IOException ex)
        {
            CloseFiles();
            throw new StoreException($"The database file '{FilePath}' cannot be opened: {ex.Message} Is another CrmEngine process using it?", ex);
        }
        catch (LiteException ex)
        {
            CloseFiles();
            throw new StoreException($"'{FilePath}' cannot be opened as a CrmEngine database (it is not a CrmEngine database or it is damaged): {ex.Message}", ex);
        }
        catch
        {
            CloseFiles();
            throw;
        }

        try
        {
            InitializeSchema();
            _lastSequence = ReadLastSequence();
            _flush = new DurableFlush(LiteDbDiskWriterProbe.Find(_db), FilePath, options.DiskSyncTimeout);
        }
        catch
        {
            _db.Dispose();
            CloseFiles();
            throw;
        }

        _executor = new WriteExecutor("CrmEngine store writer", ProcessGroup, _logger, options.DiskSyncTimeout + TimeSpan.FromSeconds(30));
        _logger.LogInformation("Store opened: {File} (schema {Version}, last change {Sequence})", FilePath, SchemaVersion, _lastSequence);
    }

    /// <summary>Full path of the live database file.</summary>
    public string FilePath { get; }

    public TimeProvider TimeProvider { get; }

    internal BsonMapper Mapper { get; }

    internal LiteDatabase Database => _db;

    internal bool IsWriterThread => _executor.IsWriterThread;

    /// <summary>The transaction open on the writer thread, or null (also null on any other thread).</summary>
    internal WriteTransaction? CurrentTransaction => _executor.IsWriterThread ? _current : null;

    /// <summary>
    /// Runs read-only <paramref name="read"/> synchronously on the calling thread inside ONE LiteDB read transaction,
    /// so its queries share one snapshot per collection: LiteDB parses a collection's page and index definitions once
    /// per snapshot, which is most of the cost of a single-key look-up, so a batch of look-ups (an import batch) is
    /// several times cheaper this way. <paramref name="read"/> must not await or write. On the writer thread (where a
    /// transaction is open) it simply runs.
    /// </summary>
    internal T ReadSnapshot<T>(Func<T> read)
    {
        ArgumentNullException.ThrowIfNull(read);
        if (IsWriterThread)
        {
            return read();
        }

        var own = _db.BeginTrans();
        try
        {
            return read();
        }
        finally
        {
            if (own)
            {
                _db.Rollback();
            }
        }
    }

    /// <summary>Sequence of the newest committed change.</summary>
    internal long LastSequence => Interlocked.Read(ref _lastSequence);

    /// <summary>The newest committed change-feed sequence as stored (0 when empty).</summary>
    internal long ReadLastSequence() =>
        _db.GetCollection(ChangesCollection).Find(Query.All("_id", Query.Descending), 0, 1).FirstOrDefault() is { } last
            ? last["_id"].AsInt64
            : 0L;


    /// <summary>The data file path for <paramref name="options"/>; a relative folder is taken from <paramref name="contentRoot"/> (or the current folder).</summary>
    public static string ResolveFilePath(StoreOptions options, string? contentRoot)
    {
        ArgumentNullException.ThrowIfNull(options);
        var dir = options.DataDirectory;
        if (!Path.IsPathRooted(dir))
        {
            dir = Path.Combine(contentRoot ?? Directory.GetCurrentDirectory(), dir);
        }

        return Path.GetFullPath(Path.Combine(dir, options.FileName));
    }

    /// <summary>Ordinal collation keeps index ranges exact ("key\u0001id" entries sort by key, then id).</summary>
    private const string CollationName = "en-US/Ordinal";

    /// <summary>
    /// Closes the engine's file handles (after LiteDB is closed) and removes an empty journal, as LiteDB does on a
    /// file it opened itself; a journal with pages (LiteDB could not checkpoint) stays and is replayed at next start.
    /// </summary>
    private void CloseFiles()
    {
        _dataFile?.Dispose();
        _logFile?.Dispose();
        try
        {
            var log = new FileInfo(LogFileOf(FilePath));
            if (log.Exists && log.Length == 0)
            {
                log.Delete();
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning(ex, "Could not remove the empty journal of {File}", FilePath);
        }
    }

    /// <summary>Journal syncs made before a commit's confirmed page, i.e. one per commit (see <see cref="LiteDbFileStream"/>).</summary>
    internal int JournalBarriers => _logFile?.Barriers ?? 0;

    private void InitializeSchema()
    {
        var meta = _db.GetCollection(MetaCollection);
        var marker = meta.FindById("schema");
        if (marker is null)
        {
            var foreign = _db.GetCollectionNames().Where(n => !n.StartsWith('$')).ToList();
            if (foreign.Count > 0)
            {
                throw new StoreException($"'{FilePath}' is a LiteDB file but not a CrmEngine database (no schema marker; it holds: {string.Join(", ", foreign)}).");
            }

            meta.Insert(new BsonDocument
            {
                ["_id"] = "schema",
                ["product"] = ProductMarker,
                ["version"] = SchemaVersion,
                ["createdAt"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            });
        }
        else
        {
            if (marker["product"].AsString != ProductMarker)
            {
                throw new StoreException($"'{FilePath}' is not a CrmEngine database (marker '{marker["product"]}').");
            }

            var version = marker["version"].AsInt32;
            if (version > SchemaVersion)
            {
                throw new StoreException($"'{FilePath}' has schema version {version}; this engine supports up to {SchemaVersion}. Upgrade the engine.");
            }
        }

        foreach (var entity in CoreEntities.All)
        {
            EnsureIndexes(entity);
        }

        if (marker is not null && marker["version"].AsInt32 < 2)
        {
            // Version 1 stored activities without the due-order key: written now, before anyone reads the timeline.
            var rebuilt = RebuildLookUps(CoreEntities.Activity, meta, marker);
            marker["version"] = SchemaVersion;
            marker.Remove(RebuiltToMember);
            meta.Update(marker);
            _logger.LogInformation("Store schema upgraded to {Version}: look-up keys of {Count} activities written again", SchemaVersion, rebuilt);
        }

        _db.GetCollection(DeliveriesCollection).EnsureIndex("ix_status", "$.status");

        // The change feed and the audit log are read from the start (API, webhooks, segments) but LiteDB creates a
        // collection only on its first insert; a read racing with the transaction that creates it fails with
        // "page type must be collection page" and closes the engine. So they exist before anyone can read them.
        foreach (var name in new[] { ChangesCollection, AuditCollection, DeliveriesCollection })
        {
            if (!_db.CollectionExists(name))
            {
                var col = _db.GetCollection(name);
                col.Insert(new BsonDocument { ["_id"] = "\u0001create" });
                col.Delete("\u0001create");
            }
        }
    }

    /// <summary>
    /// The stored collection of plugin <paramref name="pluginId"/>'s collection <paramref name="name"/>,
    /// recorded as claimed by that pair. A second pair that would share the stored collection or the
    /// entity name <c>{pluginId}_{name}</c> (both compared ignoring case) is refused. A collection that
    /// already exists under the first releases' name (<see cref="CoreEntities.LegacyCollectionNameFor"/>)
    /// is kept in use, so data stored before the naming change stays visible.
    /// </summary>
    internal string ClaimPluginCollection(string pluginId, string name)
    {
        // Every claim from a plain caller (not only the first) makes sure the collection exists before the caller
        // reads it: the first claim may have come from the writer thread, where creation waits for the write.
        var stored = ClaimPluginCollectionName(pluginId, name);
        CreateCollectionAhead(stored);
        return stored;
    }

    private string ClaimPluginCollectionName(string pluginId, string name)
    {
        var entity = CrmStore.PluginEntityName(pluginId, name);
        string stored;
        lock (_claims)
        {
            if (_claimsByEntity.TryGetValue(entity, out var byEntity))
            {
                if (byEntity.PluginId == pluginId && byEntity.Name == name)
                {
                    return byEntity.Stored;
                }

                throw new StoreException(
                    $"Plugin '{pluginId}' cannot use collection '{name}': its entity name '{entity}' is already used by plugin '{byEntity.PluginId}' " +
                    $"for collection '{byEntity.Name}' (names are compared ignoring case). Choose another collection name.");
            }

            stored = CoreEntities.CollectionNameFor(pluginId, name);
            var legacy = CoreEntities.LegacyCollectionNameFor(entity);
            if (!_claims.ContainsKey(legacy) && !_db.CollectionExists(stored) && _db.CollectionExists(legacy))
            {
                stored = legacy;
            }

            if (_claims.TryGetValue(stored, out var holder))
            {
                throw new StoreException(
                    $"Plugin '{pluginId}' cannot use collection '{name}': it would be stored in '{stored}', which plugin '{holder.PluginId}' " +
                    $"already uses for collection '{holder.Name}'. Choose another collection name.");
            }

            var claim = new CollectionClaim(pluginId, name, stored);
            _claims.Add(stored, claim);
            _claimsByEntity.Add(entity, claim);
        }

        return stored;
    }

    /// <summary>
    /// Creates a new plugin collection in a write of its own, before anyone reads it. LiteDB 5 can fail a
    /// read on another thread with "page type must be collection page" while an open transaction creates the
    /// collection being read (seen in tests); creating it up front, alone, keeps that window out of normal work.
    /// Only from a plain caller: on the writer thread or inside a handler's scope the collection is created by
    /// the write that needs it (waiting here would deadlock).
    /// </summary>
    private void CreateCollectionAhead(string stored)
    {
        if (IsWriterThread || Pipeline.WriteScope.Current is not null || Volatile.Read(ref _disposed) != 0 || _db.CollectionExists(stored))
        {
            return;
        }

        WriteAsync(_ =>
        {
            var col = _db.GetCollection(stored);
            if (!_db.CollectionExists(stored))
            {
                const string probe = "\u0001create";
                col.Insert(new BsonDocument { ["_id"] = probe });
                col.Delete(probe);
            }

            return true;
        }).GetAwaiter().GetResult();
    }

    private sealed record CollectionClaim(string PluginId, string Name, string Stored);

    /// <summary>The schema marker's record of how far an upgrade's rebuild got (the last id written), while it runs.</summary>
    private const string RebuiltToMember = "rebuiltTo";

    /// <summary>
    /// Writes the look-up entries of every stored record of <paramref name="entity"/> again (a look-up added by a later
    /// schema), in transactions of a few thousand records; only <c>_ix</c> changes (no version, change feed or audit: it
    /// is derived from the record). Runs at open, before the writer thread exists. Each transaction also records its last
    /// id in the schema <paramref name="marker"/>, so an open cut short (a service manager's start timeout on a big store)
    /// goes on from there next time instead of starting over.
    /// </summary>
    private int RebuildLookUps(EntityDescriptor entity, ILiteCollection<BsonDocument> meta, BsonDocument marker)
    {
        const int Batch = 2000;
        var collection = _db.GetCollection(entity.CollectionName);
        var rebuilt = 0;
        var last = marker.TryGetValue(RebuiltToMember, out var resumed) && resumed.IsString ? resumed.AsString : "";
        while (true)
        {
            var documents = collection.Query().Where(Query.GT("_id", last)).Limit(Batch).ToList();
            if (documents.Count == 0)
            {
                return rebuilt;
            }

            _db.BeginTrans();
            try
            {
                foreach (var document in documents)
                {
                    var record = (IEntity)Mapper.ToObject(entity.ClrType, document);
                    if (entity.LookUpKeys(record) is { } keys)
                    {
                        document[EntityDescriptor.LookUpMember] = keys;
                        collection.Update(document);
                    }
                }

                marker[RebuiltToMember] = documents[^1]["_id"].AsString;
                meta.Update(marker);
                _db.Commit();
            }
            catch
            {
                _db.Rollback();
                throw;
            }

            rebuilt += documents.Count;
            last = documents[^1]["_id"].AsString;
        }
    }

    internal void EnsureIndexes(EntityDescriptor entity)
    {
        var col = _db.GetCollection(entity.CollectionName);
        foreach (var ix in entity.Indexes)
        {
            col.EnsureIndex("ix_" + ix.Field, EntityDescriptor.IndexPath(ix.Field));
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> on the writer thread inside a LiteDB transaction: committed when
    /// it returns (unless doomed), rolled back when it throws. The task completes once the commit is
    /// on disk. Writes that queue up meanwhile share one transaction (group commit, see <see cref="ProcessGroup"/>).
    /// </summary>
    internal Task<T> WriteAsync<T>(Func<WriteTransaction, T> work)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return _executor.Enqueue(tx => work(tx!), groupable: true);
    }

    /// <summary>
    /// Runs many writes on the writer thread in ONE group (one transaction unless a write fails after changing
    /// data, see <see cref="RunSplittingOnFailure"/>; one disk sync), each with its own outcome. The task completes
    /// once all are acknowledged; read each part's <c>Error</c> / <c>Result</c>.
    /// </summary>
    internal Task<IReadOnlyList<WorkItem<T>>> WriteBatchAsync<T>(IReadOnlyList<Func<WriteTransaction, T>> works)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var parts = new Func<WriteTransaction?, T>[works.Count];
        for (var i = 0; i < parts.Length; i++)
        {
            var work = works[i];
            parts[i] = tx => work(tx!);
        }

        return _executor.EnqueueBatch(parts);
    }

    /// <summary>
    /// Group commit. The writes of a group run one after the other in ONE LiteDB transaction, each
    /// with its own <see cref="WriteTransaction"/> (sequence, doom state); one commit and one disk sync
    /// cover them all, which is what makes many concurrent single writes fast. A write that is refused
    /// cleanly (a store error before it changed anything: validation, version conflict) simply fails
    /// inside the group. A write that fails after changing data cannot be taken out of the shared
    /// transaction (LiteDB has no savepoints), so the group is rolled back and every write of it is run
    /// again on its own, except the one that failed (it keeps its error). Handlers of the replayed
    /// writes then run twice; their store effects are transactional. Nobody is told, and no
    /// after-commit action (waking async handlers) runs, before the commit is durable (<see cref="DurableFlush"/>).
    /// </summary>
    private void ProcessGroup(List<WorkItem> group)
    {
        if (group is [{ Groupable: false } alone])
        {
            try
            {
                alone.Execute(null);
            }
            catch (Exception ex)
            {
                alone.Error = ex;
            }

            return;
        }

        var afterCommit = new List<Action>();
        RunSplittingOnFailure(group, afterCommit);

        if (group.TrueForAll(i => i.Error is not null))
        {
            return; // nothing was committed
        }

        try
        {
            _flush.Run();
        }
        catch (StoreException ex)
        {
            _logger.LogError(ex, "Commit of {Count} write(s) not confirmed on disk", group.Count);
            foreach (var item in group)
            {
                item.Error ??= ex;
            }

            return;
        }

        foreach (var action in afterCommit)
        {
            try
            {
                action();
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "An after-commit action failed");
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="items"/> in one transaction. When one fails after changing data, the transaction is
    /// rolled back; the writes before it are run again together (their own transaction, committed), the failed
    /// one keeps its error and is not run again (it would meet the same state, and its handlers would fail, or
    /// hang, twice), and the writes after it go on together. So a bulk batch with a few such failures costs
    /// about two passes, not one transaction per write. Several commits of one group share the one disk sync
    /// that follows.
    /// </summary>
    private void RunSplittingOnFailure(List<WorkItem> items, List<Action> afterCommit)
    {
        var rest = items;
        while (rest.Count > 0)
        {
            var failedAt = TryRunTogether(rest, afterCommit);
            if (failedAt < 0)
            {
                return;
            }

            if (failedAt > 0)
            {
                RunSplittingOnFailure(rest.GetRange(0, failedAt), afterCommit);
            }

            rest = rest.GetRange(failedAt + 1, rest.Count - failedAt - 1);
        }
    }

    /// <summary>Waits for LiteDB's journal writer and fsyncs the files (see <see cref="DurableFlush"/>).</summary>
    internal DurableFlush Flush => _flush;

    /// <summary>
    /// The position of the write that failed after changing data (everything was rolled back; that write keeps
    /// its error, the others have none), or -1 when the transaction was committed or could not be.
    /// </summary>
    private int TryRunTogether(List<WorkItem> items, List<Action> committedActions)
    {
        var groupStart = _lastSequence;
        var afterCommit = new List<Action>();
        _db.BeginTrans();
        try
        {
            for (var position = 0; position < items.Count; position++)
            {
                var item = items[position];
                var tx = new WriteTransaction { StartSequence = _lastSequence };
                _current = tx;
                try
                {
                    item.Execute(tx);
                    if (tx.DoomedBy is { } cause)
                    {
                        throw new StoreException("The write was rolled back because a nested write failed after it had changed data: " + cause.Message, cause);
                    }

                    afterCommit.AddRange(tx.AfterCommitActions);
                }
                catch (Exception ex)
                {
                    item.Error = ex;
                    // Clean only when the pipeline counted every change of this write and there was
                    // none; any other failing write (direct WriteAsync callers) may have changed data.
                    var clean = ex is StoreException && tx.TracksModifications && tx.Modifications == 0;
                    if (!clean)
                    {
                        SafeRollback(groupStart);
                        for (var before = 0; before < position; before++)
                        {
                            items[before].Error = null; // refused cleanly in this run; it runs again
                        }

                        return position;
                    }
                }
            }

            _db.Commit();
        }
        catch (Exception ex)
        {
            // The commit itself failed: nothing of the group is stored.
            SafeRollback(groupStart);
            foreach (var item in items)
            {
                item.Error ??= ex;
            }

            return -1;
        }
        finally
        {
            _current = null;
        }

        committedActions.AddRange(afterCommit);
        return -1;
    }

    private void SafeRollback(long sequence)
    {
        try
        {
            _db.Rollback();
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Rollback failed");
        }

        Interlocked.Exchange(ref _lastSequence, sequence);
    }

    /// <summary>Takes the next change-feed sequence inside the open transaction (restored on rollback).</summary>
    internal long NextSequence()
    {
        if (_current is null || !IsWriterThread)
        {
            throw new InvalidOperationException("A sequence is only taken inside a write transaction.");
        }

        return Interlocked.Increment(ref _lastSequence);
    }


    /// <summary>
    /// A consistent copy of the live database while the engine runs: on the writer thread (so no
    /// write is half-done) the log is checkpointed into the data file, which is then copied.
    /// </summary>
    public Task BackupAsync(string targetPath, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(targetPath);
        var target = Path.GetFullPath(targetPath);
        if (string.Equals(target, FilePath, OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal))
        {
            throw new StoreException($"Refusing to back up onto the live database file '{FilePath}'. Choose another file.");
        }

        if (File.Exists(target))
        {
            throw new StoreException($"Refusing to overwrite '{target}': the backup target already exists. Choose a new file name or remove it first.");
        }

        var dir = Path.GetDirectoryName(target);
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }

        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return _executor.Enqueue(_ =>
        {
            _db.Checkpoint();
            var temp = target + ".partial";
            File.Delete(temp); // left by a backup that was killed; ours alone (the target did not exist)
            try
            {
                using (var source = new FileStream(FilePath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
                using (var copy = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                {
                    source.CopyTo(copy);
                    copy.Flush(flushToDisk: true);
                }

                File.Move(temp, target);
            }
            catch
            {
                TryDelete(temp);
                throw;
            }

            _logger.LogInformation("Backup written to {Target}", target);
            return true;
        }, groupable: false);
    }

    private void TryDelete(string file)
    {
        try
        {
            File.Delete(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning(ex, "Could not remove the unfinished backup {File}", file);
        }
    }

    /// <summary>The LiteDB journal file that belongs to a data file (<c>name-log.ext</c>).</summary>
    internal static string LogFileOf(string dataFile) =>
        Path.Combine(Path.GetDirectoryName(dataFile) ?? "", Path.GetFileNameWithoutExtension(dataFile) + "-log" + Path.GetExtension(dataFile));

    /// <summary>True when the database configured by <paramref name="options"/> is open (see <see cref="IsInUse(string)"/>).</summary>
    public static bool IsInUse(StoreOptions options, string? contentRoot = null) => IsInUse(ResolveFilePath(options, contentRoot));

    /// <summary>
    /// True when the database file is open in another process (or another engine in this one).
    /// Uses an exclusive open: LiteDB keeps the file open for as long as the engine runs.
    /// </summary>
    public static bool IsInUse(string databaseFile)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(databaseFile);
        if (!File.Exists(databaseFile))
        {
            return false;
        }

        try
        {
            using var probe = new FileStream(databaseFile, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            return false;
        }
        catch (IOException)
        {
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            return true;
        }
    }

    /// <summary>
    /// Replaces the live database with <paramref name="backupFile"/> while the engine is stopped.
    /// The backup is checked to be a CrmEngine database first; the previous file is kept as
    /// <c>&lt;name&gt;.before-restore-&lt;timestamp&gt;</c>. Returns that path (null when there was no live file).
    /// The previous file is checkpointed first (its journal merged in), so it is kept as one complete
    /// file and no journal of it is left beside the restored one. When it cannot be opened (damaged),
    /// its journal is moved aside with it under the name LiteDB looks for (<see cref="LogFileOf"/>).
    /// </summary>
    public static string? Restore(string backupFile, StoreOptions options, string? contentRoot = null, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(backupFile);
        ArgumentNullException.ThrowIfNull(options);
        var backup = Path.GetFullPath(backupFile);
        var live = ResolveFilePath(options, contentRoot);
        if (!File.Exists(backup))
        {
            throw new StoreException($"Cannot restore: the backup file '{backup}' does not exist.");
        }

        if (string.Equals(backup, live, StringComparison.Ordinal))
        {
            throw new StoreException($"Cannot restore '{backup}' onto itself: it is the live database file.");
        }

        if (IsInUse(live))
        {
            throw new StoreException($"Cannot restore: the database '{live}' is in use. Stop the CrmEngine service first, then run the restore again.");
        }

        Directory.CreateDirectory(Path.GetDirectoryName(live)!);
        var staged = live + ".restoring";
        File.Delete(staged);
        File.Delete(LogFileOf(staged));
        File.Copy(backup, staged);
        try
        {
            VerifyIsCrmDatabase(staged, backup);
        }
        catch
        {
            File.Delete(staged);
            File.Delete(LogFileOf(staged));
            throw;
        }

        string? previous = null;
        var stamp = (timeProvider ?? TimeProvider.System).GetUtcNow().ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        var liveLog = LogFileOf(live);
        if (File.Exists(live))
        {
            previous = live + ".before-restore-" + stamp;
            CheckpointForRestore(live);
            File.Move(live, previous);
            if (File.Exists(liveLog))
            {
                File.Move(liveLog, LogFileOf(previous));
            }
        }
        else if (File.Exists(liveLog))
        {
            // A journal without its data file: it would be replayed onto the restored file.
            previous = live + ".before-restore-" + stamp;
            File.Move(liveLog, LogFileOf(previous));
        }

        File.Move(staged, live);
        return previous;
    }

    /// <summary>Merges the journal of the (stopped) database into its data file; leaves a damaged file as it is.</summary>
    private static void CheckpointForRestore(string file)
    {
        try
        {
            using var db = new LiteDatabase($"Filename={file};Connection=direct;Collation=en-US/Ordinal");
            db.Checkpoint();
        }
        catch (Exception ex) when (ex is LiteException or IOException or InvalidOperationException or FormatException)
        {
            // Damaged: kept as found, together with its journal.
        }

        var log = LogFileOf(file);
        if (File.Exists(log) && new FileInfo(log).Length == 0)
        {
            File.Delete(log);
        }
    }

    private static void VerifyIsCrmDatabase(string file, string shownName)
    {
        BsonDocument? marker;
        try
        {
            using var db = new LiteDatabase($"Filename={file};Connection=direct");
            marker = db.GetCollection(MetaCollection).FindById("schema");
        }
        catch (Exception ex) when (ex is LiteException or IOException or InvalidOperationException or FormatException)
        {
            throw new StoreException($"Cannot restore: '{shownName}' is not a readable LiteDB database ({ex.Message}).", ex);
        }

        if (marker is null || !marker.TryGetValue("product", out var product) || product != ProductMarker)
        {
            throw new StoreException($"Cannot restore: '{shownName}' is a LiteDB file but not a CrmEngine database (no schema marker).");
        }

        if (marker["version"].AsInt32 > SchemaVersion)
        {
            throw new StoreException($"Cannot restore: '{shownName}' has schema version {marker["version"].AsInt32}, newer than this engine ({SchemaVersion}).");
        }
    }

    /// <summary>Stops taking writes, finishes every queued write (none acknowledged is lost), checkpoints and closes the file.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (!_executor.Stop())
        {
            // The writer thread is stuck inside LiteDB: checkpointing or closing would wait for it too.
            _logger.LogError("Store not closed cleanly: {File} (the journal is replayed at next start)", FilePath);
            return;
        }

        try
        {
            _db.Checkpoint();
        }
        catch (Exception ex) when (ex is LiteException or IOException or ObjectDisposedException)
        {
            // ObjectDisposedException: LiteDB closed its engine itself earlier (it does so after an internal
            // error); every acknowledged write is already in the fsynced journal, which is replayed at next start.
            _logger.LogWarning(ex, "Checkpoint at shutdown failed; the journal is replayed at next start");
        }

        try
        {
            _db.Dispose();
        }
        catch (ObjectDisposedException ex)
        {
            _logger.LogWarning(ex, "LiteDB had already closed its engine: {File}", FilePath);
        }

        CloseFiles();

        _logger.LogInformation("Store closed: {File}", FilePath);
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using CrmEngine.DataExchange.Customers;
using CrmEngine.DataExchange.Duplicates;
using CrmEngine.Security;
using CsvHelper;
using Microsoft.Extensions.Options;

namespace CrmEngine.DataExchange.Csv;

/// <summary>How one import runs.</summary>
public sealed record ImportRequest
{
    /// <summary>Mapping file (JSON); without one the header names the fields.</summary>
    public string? MappingPath { get; init; }

    /// <summary>Column delimiter; detected from the header line (',' ';' or tab) when not given.</summary>
    public string? Delimiter { get; init; }

    /// <summary>Text encoding name (utf-8, windows-1252, iso-8859-1, ...); a byte-order mark wins. Default UTF-8.</summary>
    public string? Encoding { get; init; }

    /// <summary>Read, map, check and match every row, but write nothing to the store.</summary>
    public bool DryRun { get; init; }

    /// <summary>Where rejected rows go; default <c>&lt;file&gt;.rejects.csv</c> beside the input.</summary>
    public string? RejectPath { get; init; }

    /// <summary>Who imports (recorded as <c>import:&lt;who&gt;</c> in the audit log and change feed).</summary>
    public string User { get; init; } = "cli";

    /// <summary>
    /// Access check per customer written (stored JSON before, or null for a create; the card after): why the acting user
    /// may not write it, or null. The rows of a refused customer are rejected in column <c>access</c>. Null: no check
    /// (the machine operator). See <c>CustomerAccess.ForImport</c>. With <see cref="Access"/> and no Authorize, the
    /// check is <c>CustomerAccess.ForImport(Access)</c>.
    /// </summary>
    public Func<string?, Customer, string?>? Authorize { get; init; }

    /// <summary>
    /// The importing user's access (the API caller, or the CLI's <c>--as</c>); null is the machine operator. With it the
    /// access decision comes before any comparison: a row naming a field hidden from the user is refused before it is
    /// looked up; a row that an id, external id or e-mail (or a duplicate rule) ties to a customer the user may not read,
    /// or whose id names no customer the user may read, is refused with one neutral reason (<see cref="NotYours"/>) and
    /// creates nothing; new customers always get their id from the engine; a customer is written only after the
    /// write check, so "unchanged" is never said of a card the user may not change.
    /// </summary>
    public AccessContext? Access { get; init; }

    /// <summary>
    /// The one reason of a user's row that meets a record the user may not read, or an id that names nothing they may
    /// read: the same text for a customer that exists and one that does not, so the reject file confirms nothing.
    /// </summary>
    public static string NotYours(string userId) =>
        $"denied (customer:write): the row conflicts with a record that user '{userId}' may not change " +
        "(an id must name a customer the user may change; new customers get their id from the engine)";
}

/// <summary>Where an import is, for a progress display.</summary>
public sealed record ImportProgress(long Rows, long Created, long Updated, long Unchanged, long Rejected, long BytesRead, long BytesTotal, TimeSpan Elapsed)
{
    public double RowsPerSecond => Elapsed.TotalSeconds > 0 ? Rows / Elapsed.TotalSeconds : 0;

    /// <summary>Remaining time estimated from the share of the file read so far.</summary>
    public TimeSpan? Eta => BytesTotal > 0 && BytesRead > 0 && BytesRead < BytesTotal
        ? TimeSpan.FromSeconds(Elapsed.TotalSeconds * (BytesTotal - BytesRead) / BytesRead)
        : null;
}

/// <summary>See <see cref="ImportSummary.Timings"/>.</summary>
public sealed record ImportTimings(TimeSpan ReadAndMap, TimeSpan LookUps, TimeSpan WaitingForWrites);

/// <summary>One rejected row: its line in the file, the column(s) and why.</summary>
public sealed record ImportReject(long Line, string Column, string Reason);

/// <summary>What an import did. Customers counted once each; rows that failed are in the reject file.</summary>
public sealed record ImportSummary(string File, long Rows, long Created, long Updated, long Unchanged, long Rejected, TimeSpan Elapsed,
    string? RejectFile, bool DryRun, bool Cancelled, IReadOnlyList<string> Warnings, IReadOnlyList<ImportReject> FirstRejects)
{
    /// <summary>
    /// Where the importing thread spent its time (wall clock): reading and mapping rows, the batched store look-ups,
    /// and waiting for the writer (the pipeline writes of a batch overlap the reading of the next; this is what was
    /// left to wait for).
    /// </summary>
    public ImportTimings? Timings { get; init; }

    public string ToText()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{(DryRun ? "dry run of " : "")}{File}: {Rows} rows, {Created} created, {Updated} updated, {Unchanged} unchanged, {Rejected} rejected in {Elapsed.TotalSeconds:0.0} s");
        if (Elapsed.TotalSeconds > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $" ({Rows / Elapsed.TotalSeconds:0} rows/s)");
        }

        sb.AppendLine();
        foreach (var w in Warnings)
        {
            sb.Append("warning: ").AppendLine(w);
        }

        if (RejectFile is not null && Rejected > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $"rejected rows (line, column, reason, then the row): {RejectFile}").AppendLine();
        }

        if (Cancelled)
        {
            sb.AppendLine("interrupted: rows written so far stay; run the same import again to finish it (no duplicates are created)");
        }

        return sb.ToString();
    }
}

/// <summary>
/// CSV import of customers (CsvHelper). Every row is mapped, checked and matched to the store: by <c>id</c>, then by
/// external id (<c>system:id</c>), then by normalised e-mail; a match is updated (the row's non-empty values merged in),
/// anything else created, and the duplicate rules run on creates (Merge turns a create into an update). Rows go to the
/// store in batches through <see cref="BulkWriteExtensions.WriteManyAsync{T}"/>, so every row passes the pipeline.
/// Rows with no id, external id or e-mail get an id derived from their content, so running the same file again after
/// an interruption finds them instead of creating them twice.
/// </summary>
public sealed class CustomerImporter
{
    private const int KeptRejects = 100;
    private readonly IStoreProvider _stores;
    private readonly DataExchangeOptions _options;
    private readonly DuplicateFinder _finder;
    private readonly TimeProvider _time;

    internal CustomerImporter(IStoreProvider stores, IOptions<DataExchangeOptions> options, DuplicateFinder finder, TimeProvider? time = null)
    {
        _stores = stores;
        _options = options.Value;
        _finder = finder;
        _time = time ?? TimeProvider.System;
    }

    static CustomerImporter() => System.Text.Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);

    public async Task<ImportSummary> ImportFileAsync(string path, ImportRequest request, IProgress<ImportProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new MappingException($"{full}: the file does not exist");
        }

        await using var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return await ImportAsync(stream, full, request with { RejectPath = request.RejectPath ?? full + ".rejects.csv" }, progress, cancellationToken);
    }

    /// <summary>Imports from <paramref name="input"/>; <paramref name="name"/> names it in messages.</summary>
    public async Task<ImportSummary> ImportAsync(Stream input, string name, ImportRequest request, IProgress<ImportProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(request);
        var display = Path.GetFileName(name);
        var mapping = request.MappingPath is null ? CustomerMapping.FromHeader() : CustomerMapping.Load(request.MappingPath);
        var encoding = EncodingOf(request.Encoding);
        var delimiter = request.Delimiter ?? mapping.Delimiter;
        if (delimiter is "\\t" or "tab")
        {
            delimiter = "\t";
        }

        await _finder.EnsureIndexAsync(); // the fuzzy look-ups of every batch use it
        var started = Stopwatch.StartNew();
        var run = new Run(this, request, mapping, input.CanSeek ? input.Length : 0, started);
        if (request.RejectPath is { } rejectPath && File.Exists(rejectPath))
        {
            File.Delete(rejectPath); // a reject file always belongs to the latest run
        }

        var malformed = new System.Collections.Concurrent.ConcurrentDictionary<long, string>();
        var options = new CsvReaderOptions
        {
            Separator = delimiter is { Length: 1 } ? delimiter[0] : null,
            HasHeader = true,
            SkipEmptyLines = true,
            TrackLineNumbers = true,
            AllowLineBreaksInQuotes = true,
            Encoding = encoding,
            OnMalformedRecord = m => malformed[m.LineNumber] = Describe(m.Reason),
        };
        if (delimiter is { Length: not 1 })
        {
            throw new MappingException($"the delimiter must be one character, not '{delimiter}'");
        }

        await using var reader = CsvReader.Create(input, options, leaveOpen: true);
        reader.ReadHeader();
        if (reader.Headers.Count == 0)
        {
            throw new MappingException($"{display}: the file is empty (a header line with column names is needed)");
        }

        var header = reader.Headers.Select(h => h.Trim().TrimStart('\uFEFF')).ToArray();
        run.Header = header;
        run.Delimiter = reader.Separator.ToString();
        run.Plan = mapping.Plan(display, header, out var ignored);
        if (ignored.Count > 0)
        {
            run.Warnings.Add($"columns not imported (no customer field): {string.Join(", ", ignored)}");
        }

        try
        {
            while (reader.Read())
            {
                cancellationToken.ThrowIfCancellationRequested();
                var record = new string[reader.FieldCount];
                for (var i = 0; i < record.Length; i++)
                {
                    record[i] = reader.GetString(i);
                }

                var line = reader.LineNumber;
                run.BadData = malformed.TryRemove(line, out var bad) ? bad : null;
                run.Rows++;
                run.ReadRow(line, record);
                if (run.Pending.Count >= _options.ImportBatchSize)
                {
                    run.BytesRead = reader.ByteOffset;
                    await run.FlushAsync(cancellationToken);
                    progress?.Report(run.Progress());
                }
            }

            await run.FlushAsync(cancellationToken);
            await run.DrainAsync();
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            run.Cancelled = true;
        }
        finally
        {
            try
            {
                await run.DrainAsync(); // a batch still writing is counted (and its rejects written) before we return
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                run.Cancelled = true;
            }
            finally
            {
                run.CloseRejects();
            }
        }

        run.BytesRead = run.BytesTotal;
        progress?.Report(run.Progress());
        return new ImportSummary(display, run.Rows, run.Created, run.Updated, run.Unchanged, run.Rejected, started.Elapsed,
            run.Rejected > 0 ? request.RejectPath : null, request.DryRun, run.Cancelled, run.Warnings, run.FirstRejects)
        {
            Timings = new ImportTimings(started.Elapsed - run.LookUpTime - run.WaitTime, run.LookUpTime, run.WaitTime),
        };
    }

    private static string Describe(CsvMalformedReason reason) => reason switch
    {
        CsvMalformedReason.StrayQuote => "a quote inside an unquoted field (quote the whole field and double inner quotes)",
        CsvMalformedReason.TextAfterClosingQuote => "text after the closing quote of a field",
        CsvMalformedReason.UnterminatedQuote => "a quoted field that is never closed",
        _ => "malformed quoting (" + reason + ")",
    };

    private static Encoding EncodingOf(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            return new UTF8Encoding(false);
        }

        try
        {
            return System.Text.Encoding.GetEncoding(name);
        }
        catch (ArgumentException)
        {
            throw new MappingException($"unknown encoding '{name}' (for example utf-8, windows-1252, iso-8859-1, utf-16)");
        }
    }

    /// <summary>A row read and checked, waiting for its batch.</summary>
    private sealed record PendingRow(long Line, string[] Record, List<(CustomerField Field, object Value)> Values);

    /// <summary>One write of a batch: a customer to create or update, and the rows that went into it.</summary>
    private sealed class BatchItem(Customer entity, bool create, string? storedJson)
    {
        public Customer Entity { get; } = entity;
        public bool Create { get; } = create;
        public string? StoredJson { get; } = storedJson;
        public List<PendingRow> Rows { get; } = [];

        /// <summary>Ids of customers a create looks like under a Warn rule (tagged when it is written).</summary>
        public List<string> PossibleDuplicates { get; } = [];
    }

    private sealed class Run(CustomerImporter owner, ImportRequest request, CustomerMapping mapping, long bytesTotal, Stopwatch clock)
    {
        private readonly ICrmStore _store = owner._stores.ForActor(DuplicateGuard.ImportActorPrefix + request.User);
        private CsvWriter? _rejects;

        public string[] Header { get; set; } = [];
        public string Delimiter { get; set; } = ",";
        public List<(int Index, string Column, CustomerField Field)> Plan { get; set; } = [];
        public List<PendingRow> Pending { get; } = [];
        public List<string> Warnings { get; } = [];
        public List<ImportReject> FirstRejects { get; } = [];
        public string? BadData { get; set; }
        public long Rows, Created, Updated, Unchanged, Rejected, BytesRead;
        public long BytesTotal => bytesTotal;
        public bool Cancelled;
        private readonly ParseContext _ctx = new(mapping.ListSeparator);

        // The importing user (null: the machine operator, or an access model without users) and what is hidden from them.
        private readonly AccessContext? _access = request.Access is { Unrestricted: false } a ? a : null;
        private readonly Func<string?, Customer, string?>? _authorize =
            request.Authorize ?? (request.Access is { } a ? CustomerAccess.ForImport(a) : null);
        private readonly FieldMask? _mask = request.Access is { Unrestricted: false } a ? a.Fields(EntityNames.Customer) : null;
        private Dictionary<string, string>? _redirects;
        private readonly BatchDuplicates<BatchItem> _near = new(owner._finder.Options);

        public ImportProgress Progress() => new(Rows, Created, Updated, Unchanged, Rejected, BytesRead, BytesTotal, clock.Elapsed);

        public void ReadRow(long line, string[] record)
        {
            if (BadData is { } bad)
            {
                BadData = null;
                Reject(line, record, "(row)", bad);
                return;
            }

            if (record.Length != Header.Length)
            {
                var reason = record.Length < Header.Length
                    ? $"the row has {record.Length} fields, the header {Header.Length}: missing {string.Join(", ", Header.Skip(record.Length))}"
                    : $"the row has {record.Length} fields, the header only {Header.Length} (an unquoted '{Delimiter}' inside a value?)";
                Reject(line, record, "(row)", reason);
                return;
            }

            var values = new List<(CustomerField, object)>(Plan.Count);
            List<(string Column, string Reason)>? errors = null;
            foreach (var (index, column, field) in Plan)
            {
                var cell = record[index].Trim();
                if (cell.Length == 0)
                {
                    continue;
                }

                if (HiddenField(field) is { } hidden)
                {
                    // Refused before anything is compared: "unchanged" or "created" would confirm a guessed value.
                    (errors ??= []).Add((column, $"denied ({EntityNames.Customer}.{hidden}:write): user '{_access!.UserId}' may not read or change {EntityNames.Customer}.{hidden}"));
                    continue;
                }

                try
                {
                    if (field.Parse(cell, _ctx) is { } value)
                    {
                        values.Add((field, value));
                    }
                }
                catch (CellException ex)
                {
                    (errors ??= []).Add((column, ex.Message));
                }
            }

            if (errors is not null)
            {
                Reject(line, record, string.Join(" | ", errors.Select(e => e.Column)), string.Join("; ", errors.Select(e => $"{e.Column}: {e.Reason}")));
                return;
            }

            if (values.Count == 0)
            {
                Reject(line, record, "(row)", "no mapped column holds a value");
                return;
            }

            Pending.Add(new PendingRow(line, record, values));
        }

        /// <summary>The protected field (as the mask names it) a column writes, when it is hidden from the importing user.</summary>
        private string? HiddenField(CustomerField field)
        {
            if (_mask is not { Hidden.Count: > 0 })
            {
                return null;
            }

            var top = field.Name.Split('.')[0];
            return _mask.Hidden.FirstOrDefault(h => string.Equals(h, top, StringComparison.OrdinalIgnoreCase));
        }

        /// <summary>
        /// Merged-away ids and the ids they lead to (read once per run), so that a row naming one finds the kept customer
        /// and no new customer takes a merged-away id (the API would then answer it instead of the redirect).
        /// </summary>
        private async Task ReadRedirectsAsync(CancellationToken ct)
        {
            var set = owner._stores.ForActor("system:" + CustomerRedirects.Owner, CustomerRedirects.Owner).Collection<CustomerRedirect>(CustomerRedirects.Collection);
            var map = new Dictionary<string, string>(StringComparer.Ordinal);
            string? after = null;
            while (true)
            {
                var page = await set.ListAsync(1000, after, ct);
                foreach (var r in page)
                {
                    map[r.Id] = r.TargetId;
                }

                if (page.Count < 1000)
                {
                    break;
                }

                after = page[^1].Id;
            }

            _redirects = map;
        }

        /// <summary>Was <paramref name="id"/> merged away? Then the id at the end of its chain, else null.</summary>
        private string? RedirectOf(string id)
        {
            if (_redirects is not { Count: > 0 } map || !map.TryGetValue(id, out var target))
            {
                return null;
            }

            for (var hop = 0; hop < 32 && map.TryGetValue(target, out var next) && next != id; hop++)
            {
                target = next;
            }

            return target;
        }

        private bool Readable(Customer c) => DuplicateAccess.Readable(_access, c);

        public async Task FlushAsync(CancellationToken ct)
        {
            if (Pending.Count == 0)
            {
                return;
            }

            if (_redirects is null)
            {
                await ReadRedirectsAsync(ct);
            }

            var items = new List<BatchItem>();
            var byKey = new Dictionary<string, BatchItem>(StringComparer.Ordinal);
            _near.NextBatch();
            var patches = new Customer[Pending.Count];
            for (var i = 0; i < patches.Length; i++)
            {
                patches[i] = new Customer();
                CustomerCombiner.ApplyRow(patches[i], Pending[i].Values);
            }

            // The previous batch may still be writing (see StartWrite): a row that belongs to one of its customers
            // waits for it, so that it is found in the store instead of being created a second time.
            if (_inFlight is not null && patches.Any(p => Keys(p).Any(_inFlightKeys.Contains)))
            {
                await DrainAsync();
            }

            // Every store look-up of the batch at once, in one read snapshot (see LookUp).
            var found = LookUpBatch(patches, ct);
            if (_inFlight is not null && found.Any(f => TouchesInFlight(f.Stored) || TouchesInFlight(f.Duplicates.MergeInto)))
            {
                await DrainAsync(); // it updates a customer the previous batch is writing: read it again once written
                found = LookUpBatch(patches, ct);
            }

            // A new customer that duplicates one of the batch still being written, under a rule that blocks or merges:
            // decided on the store once that batch is in (a write in flight can be neither merged into nor shown as stored).
            if (_inFlight is not null && BlocksOrMerges(DuplicateMatch.PhoneRule, DuplicateMatch.NameRule)
                && patches.Where((p, i) => found[i].Stored is null).Any(p => _near.Find(p).Any(m => m.Earlier && BlocksOrMerges(m.Match.Rule))))
            {
                await DrainAsync();
                found = LookUpBatch(patches, ct);
            }

            for (var r = 0; r < patches.Length; r++)
            {
                var row = Pending[r];
                var patch = patches[r];
                var keys = Keys(patch).ToList();
                List<string>? warnIds = null;
                if (found[r].Refused)
                {
                    // Before any comparison, and also when an earlier row of this file holds the same key.
                    Reject(row.Line, row.Record, "access", ImportRequest.NotYours(_access!.UserId));
                    continue;
                }

                var item = keys.Select(k => byKey.GetValueOrDefault(k)).FirstOrDefault(i => i is not null);
                if (item is null)
                {
                    var lookup = found[r];
                    if (lookup.Error is { } error)
                    {
                        Reject(row.Line, row.Record, "(row)", error);
                        continue;
                    }

                    var stored = lookup.Stored;
                    var create = stored is null;
                    if (create)
                    {
                        var (merged, blocked, warn) = lookup.Duplicates;
                        if (blocked is not null)
                        {
                            Reject(row.Line, row.Record, ColumnOf(DuplicateGuard.FieldOf(blocked.Rule)),
                                $"duplicate of customer {blocked.CustomerId} '{blocked.CustomerName}': {blocked.Detail}");
                            continue;
                        }

                        stored = merged;
                        create = stored is null;
                        warnIds = warn;
                        if (create)
                        {
                            // The rows of this batch and of the one being written, which the store look-ups cannot see.
                            var (near, nearBlocked) = InBatch(patch, warn);
                            if (nearBlocked is { } nb)
                            {
                                Reject(row.Line, row.Record, ColumnOf(DuplicateGuard.FieldOf(nb.Match.Rule)),
                                    $"duplicate of customer {nb.Match.CustomerId} '{nb.Match.CustomerName}' (line {nb.Item.Rows.FirstOrDefault()?.Line} of this file): {nb.Match.Detail}");
                                continue;
                            }

                            item = near;
                        }
                    }

                    if (item is null && !create && byKey.TryGetValue("id:" + stored!.Id, out var same))
                    {
                        item = same;
                    }
                    else if (item is null)
                    {
                        // Every new customer gets its id here, so that rows after it can name it (possible duplicates).
                        item = create
                            ? new BatchItem(new Customer { Id = NewIdFor(patch) }, true, null)
                            : new BatchItem(stored!, false, JsonSerializer.Serialize(stored));
                        items.Add(item);
                    }
                }

                var conflicts = CustomerCombiner.Conflicts(item.Entity, patch, includeCustom: false);
                if (conflicts.Count > 0 && item.Rows.Count + (item.Create ? 0 : 1) > 0)
                {
                    Reject(row.Line, row.Record, "(row)", $"matches customer {(item.Entity.Id.Length > 0 ? item.Entity.Id : "of an earlier row")} but {string.Join("; ", conflicts)}");
                    continue;
                }

                // The item's id stays the one it was found or created under (a row found by a merged-away id or by
                // e-mail does not move the card to the id in its id column).
                var itemId = item.Entity.Id;
                CustomerCombiner.ApplyRow(item.Entity, row.Values);
                item.Entity.Id = itemId;
                item.Rows.Add(row);
                if (item.Create)
                {
                    item.PossibleDuplicates.AddRange((warnIds ?? []).Where(id => id != item.Entity.Id));
                    _near.Add(item, item.Entity);
                }
                foreach (var k in Keys(item.Entity))
                {
                    byKey.TryAdd(k, item);
                }
            }

            Pending.Clear();
            var writes = new List<BulkWrite<Customer>>();
            var written = new List<BatchItem>();
            foreach (var item in items.Where(i => i.Rows.Count > 0))
            {
                // The access decision first: "unchanged" is said only of a card the user may change.
                if (_authorize?.Invoke(item.StoredJson, item.Entity) is { } refused)
                {
                    item.Rows.ForEach(r => Reject(r.Line, r.Record, "access", refused));
                    continue;
                }

                if (!item.Create && JsonSerializer.Serialize(item.Entity) == item.StoredJson)
                {
                    Unchanged++;
                    continue;
                }

                if (item.Create)
                {
                    DuplicateGuard.MarkPossibleDuplicate(item.Entity, item.PossibleDuplicates.Distinct(StringComparer.Ordinal).ToList());
                }

                writes.Add(new BulkWrite<Customer>(item.Create ? BulkOperation.Create : BulkOperation.Update, item.Entity));
                written.Add(item);
            }

            if (request.DryRun)
            {
                Created += written.Count(i => i.Create);
                Updated += written.Count(i => !i.Create);
                return;
            }

            if (writes.Count == 0)
            {
                return;
            }

            // One batch writes while the next is read, mapped and looked up (the writer thread and this one overlap).
            await DrainAsync();
            var writing = new HashSet<string>(StringComparer.Ordinal);
            foreach (var item in written)
            {
                writing.UnionWith(Keys(item.Entity));
                _known?.Add(item.Entity); // from now on its keys are looked up in the store
            }

            _inFlightKeys = writing;
            _inFlight = WriteAndCountAsync(writes, written, ct);
        }

        private Task? _inFlight;
        private HashSet<string> _inFlightKeys = new(StringComparer.Ordinal);

        private bool TouchesInFlight(Customer? stored) => stored is not null && _inFlightKeys.Contains("id:" + stored.Id);

        /// <summary>Waits for the batch being written and counts its outcome.</summary>
        public async Task DrainAsync()
        {
            if (_inFlight is { } writing)
            {
                _inFlight = null;
                _inFlightKeys = new HashSet<string>(StringComparer.Ordinal);
                var clock = Stopwatch.StartNew();
                try
                {
                    await writing;
                }
                finally
                {
                    WaitTime += clock.Elapsed;
                    _near.PreviousStored(); // the store look-ups see that batch from now on
                }
            }
        }

        private async Task WriteAndCountAsync(List<BulkWrite<Customer>> writes, List<BatchItem> written, CancellationToken ct)
        {
            var results = await WriteAsync(writes, ct);
            foreach (var result in results)
            {
                var item = written[result.Index];
                if (result.Succeeded)
                {
                    if (item.Create)
                    {
                        Created++;
                    }
                    else
                    {
                        Updated++;
                    }

                    continue;
                }

                var (column, reason) = Describe(result.Error!);
                foreach (var row in item.Rows)
                {
                    Reject(row.Line, row.Record, column, reason);
                }
            }

            // A bulk call stopped by cancellation reports only the writes it made.
            ct.ThrowIfCancellationRequested();
        }

        /// <summary>
        /// The batch's creates go first as one all-or-nothing call (one transaction), which is the fast path while
        /// <c>WriteManyAsync</c> writes one record per call; if any create is refused, they are written again through
        /// <c>WriteManyAsync</c>, which reports each one's outcome. Updates always take <c>WriteManyAsync</c>.
        /// </summary>
        private async Task<IReadOnlyList<BulkWriteResult<Customer>>> WriteAsync(List<BulkWrite<Customer>> writes, CancellationToken ct)
        {
            var creates = writes.Select((w, i) => (w, i)).Where(x => x.w.Operation == BulkOperation.Create).ToList();
            var results = new List<BulkWriteResult<Customer>>(writes.Count);
            var rest = writes.Select((w, i) => (w, i)).ToList();
            if (creates.Count > 1)
            {
                try
                {
                    var stored = await _store.Customers.CreateManyAsync(creates.Select(c => c.w.Entity).ToList(), ct);
                    results.AddRange(creates.Select((c, k) => new BulkWriteResult<Customer>(c.i, stored[k], null)));
                    rest = rest.Where(x => x.w.Operation != BulkOperation.Create).ToList();
                }
                catch (StoreException)
                {
                    // One of them was refused and none was stored: per-record outcomes below.
                }
            }

            if (rest.Count > 0)
            {
                var outcomes = await _store.Customers.WriteManyAsync(rest.Select(x => x.w).ToList(), ct);
                results.AddRange(outcomes.Select(o => o with { Index = rest[o.Index].i }));
            }

            return results;
        }

        /// <summary>What the store holds for one row: the customer it updates, or (for a create) its duplicates.</summary>
        /// <summary><paramref name="Refused"/>: the row meets a customer the importing user may not read (see <see cref="ImportRequest.NotYours"/>).</summary>
        private sealed record LookUp(Customer? Stored, (Customer? MergeInto, DuplicateMatch? Blocked, List<string> Warn) Duplicates, string? Error,
            bool Refused = false);

        private static readonly LookUp RefusedRow = new(null, default, null, Refused: true);

        /// <summary>
        /// The look-ups of a whole batch in one read snapshot on this thread: LiteDB parses a collection's page and
        /// index definitions once per snapshot instead of once per query, and nothing waits for a thread hop between
        /// rows. Rows are matched against the store as it was before this batch; rows of the batch itself are matched
        /// through the batch's key map.
        /// </summary>
        private LookUp[] LookUpBatch(Customer[] patches, CancellationToken ct)
        {
            var clock = Stopwatch.StartNew();
            try
            {
                return LookUpBatchNow(patches, ct);
            }
            finally
            {
                LookUpTime += clock.Elapsed;
            }
        }

        public TimeSpan LookUpTime { get; private set; }

        public TimeSpan WaitTime { get; private set; }

        private bool _knownRead;
        private KnownKeys? _known;

        /// <summary>False when no stored customer holds the key (see <see cref="KnownKeys"/>): its look-up is skipped.</summary>
        private bool May(string kind, string key) => _known?.MayExist(kind, key) ?? true;

        private LookUp[] LookUpBatchNow(Customer[] patches, CancellationToken ct)
        {
            if (!_knownRead)
            {
                _knownRead = true;
                _known = KnownKeys.Read(owner._finder.Database);
            }

            var customers = _store.Customers as EntitySet<Customer>
                ?? throw new InvalidOperationException("the import needs the engine's own store");
            return owner._finder.Database.ReadSnapshot(() =>
            {
                var result = new LookUp[patches.Length];
                for (var i = 0; i < patches.Length; i++)
                {
                    ct.ThrowIfCancellationRequested();
                    result[i] = LookUpOne(customers, patches[i]);
                }

                return result;
            });
        }

        private LookUp LookUpOne(EntitySet<Customer> customers, Customer patch)
        {
            try
            {
                var emailsSeen = new HashSet<string>(StringComparer.Ordinal);
                var stored = Match(customers, patch, emailsSeen, out var redirected);
                if (_access is not null)
                {
                    // A user's row: every key must lead only to customers the user may read, and an id must find one.
                    if ((stored is not null && !Readable(stored)) || (stored is null && patch.Id.Length > 0) || KeyOfHidden(customers, patch))
                    {
                        return RefusedRow;
                    }
                }
                else if (stored is null && patch.Id.Length > 0 && redirected)
                {
                    return new LookUp(null, default, $"id: customer '{patch.Id}' was merged away and the customer it went into is gone; a new customer cannot take its id (leave id empty)");
                }

                if (stored is not null)
                {
                    return new LookUp(stored, default, null);
                }

                var duplicates = CheckDuplicates(customers, patch, emailsSeen);
                return duplicates.Blocked is { CustomerId.Length: 0 } ? RefusedRow : new LookUp(null, duplicates, null);
            }
            catch (CellException ex)
            {
                return new LookUp(null, default, ex.Message);
            }
        }

        /// <summary>A stored customer by id, or by the merged-away id it now answers for (<paramref name="redirected"/>: the id was merged away).</summary>
        private Customer? ById(EntitySet<Customer> customers, string id, out bool redirected)
        {
            redirected = false;
            if (May(KnownKeys.Id, id) && customers.GetNow(id) is { } byId)
            {
                return byId;
            }

            if (RedirectOf(id) is not { } target)
            {
                return null;
            }

            redirected = true;
            return customers.GetNow(target);
        }

        /// <summary>Does an external id or e-mail of the row belong to a customer the importing user may not read?</summary>
        private bool KeyOfHidden(EntitySet<Customer> customers, Customer patch)
        {
            foreach (var (system, id) in patch.ExternalIds)
            {
                if (May(KnownKeys.External, system + ":" + id) && customers.FindNow(IndexedField.ExternalId, system + ":" + id, 10).Any(c => !Readable(c)))
                {
                    return true;
                }
            }

            foreach (var email in patch.Emails)
            {
                if (DuplicateKeys.Email(email) is { } key && May(KnownKeys.Email, key) && customers.FindNow(IndexedField.Email, email, 10).Any(c => !Readable(c)))
                {
                    return true;
                }
            }

            return false;
        }

        /// <summary>
        /// The id a new customer is created under: the row's (the machine operator's import, e.g. a restore), else the
        /// content id of a row with nothing to find it by, else a new engine id. A content id that was merged away is not
        /// taken again. A user's rows never get here with an id (see LookUpOne).
        /// </summary>
        private string NewIdFor(Customer patch)
        {
            if (patch.Id.Length > 0)
            {
                return patch.Id;
            }

            return ContentId(patch) is { } content && RedirectOf(content) is null ? content : WritePipeline.NewId();
        }

        private Customer? Match(EntitySet<Customer> customers, Customer patch, HashSet<string> emailsSeen, out bool redirected)
        {
            redirected = false;
            if (patch.Id.Length > 0 && ById(customers, patch.Id, out redirected) is { } byId)
            {
                return byId;
            }

            foreach (var (system, id) in patch.ExternalIds)
            {
                if (!May(KnownKeys.External, system + ":" + id))
                {
                    continue;
                }

                var found = customers.FindNow(IndexedField.ExternalId, system + ":" + id, 2);
                if (found.Count > 0)
                {
                    return found[0];
                }
            }

            foreach (var email in patch.Emails)
            {
                if (DuplicateKeys.Email(email) is not { } key)
                {
                    continue;
                }

                var found = May(KnownKeys.Email, key) ? customers.FindNow(IndexedField.Email, email, 2) : [];
                if (found.Count > 0)
                {
                    return found[0];
                }

                emailsSeen.Add(key);
            }

            if (patch.Id.Length == 0 && ContentId(patch) is { } content && ById(customers, content, out _) is { } again)
            {
                return again;
            }

            return null;
        }

        private (Customer? MergeInto, DuplicateMatch? Blocked, List<string> Warn) CheckDuplicates(EntitySet<Customer> customers, Customer patch,
            HashSet<string> emailsSeen)
        {
            var warn = new List<string>();
            foreach (var m in owner._finder.Find(_store, patch, null, emailsSeen, May))
            {
                var action = owner._finder.ActionFor(m.Rule);
                // A user is told only of customers they may read: a Block or Merge match on another refuses the row
                // neutrally (an empty id marks it), a Warn match on one is left out.
                var hidden = _access is not null && action != DuplicateAction.Off && !(customers.GetNow(m.CustomerId) is { } other && Readable(other));
                switch (action)
                {
                    case DuplicateAction.Block or DuplicateAction.Merge when hidden:
                        return (null, m with { CustomerId = "", CustomerName = "" }, warn);
                    case DuplicateAction.Block:
                        return (null, m, warn);
                    case DuplicateAction.Merge:
                        if (customers.GetNow(m.CustomerId) is { } target)
                        {
                            return (target, null, warn);
                        }

                        break;
                    case DuplicateAction.Warn when !hidden:
                        warn.Add(m.CustomerId);
                        break;
                }
            }

            return (null, null, warn);
        }

        private bool BlocksOrMerges(params string[] rules) =>
            rules.Any(r => owner._finder.ActionFor(r) is DuplicateAction.Block or DuplicateAction.Merge);

        /// <summary>
        /// The phone and name rules against the new customers of this batch and of the batch being written: the first
        /// Block match refuses the row, the first Merge match (this batch) is the customer the row goes into, Warn
        /// matches are added to <paramref name="warn"/>. A Block or Merge match of the batch being written does not
        /// get here (that batch is stored first, see FlushAsync); should one, it only warns.
        /// </summary>
        private (BatchItem? MergeInto, (DuplicateMatch Match, BatchItem Item)? Blocked) InBatch(Customer patch, List<string> warn)
        {
            BatchItem? mergeInto = null;
            foreach (var (m, other, earlier) in _near.Find(patch))
            {
                var action = earlier ? DuplicateAction.Warn : owner._finder.ActionFor(m.Rule);
                switch (action)
                {
                    case DuplicateAction.Block:
                        return (null, (m, other));
                    case DuplicateAction.Merge:
                        mergeInto ??= other;
                        break;
                    case DuplicateAction.Warn:
                        warn.Add(m.CustomerId);
                        break;
                }
            }

            return (mergeInto, null);
        }

        /// <summary>Keys that make two rows of one batch the same customer: id, external ids, e-mails.</summary>
        private static IEnumerable<string> Keys(Customer c)
        {
            if (c.Id.Length > 0)
            {
                yield return "id:" + c.Id;
            }

            foreach (var (system, id) in c.ExternalIds)
            {
                yield return "ext:" + system + ":" + id;
            }

            foreach (var e in c.Emails)
            {
                if (DuplicateKeys.Email(e) is { } key)
                {
                    yield return "email:" + key;
                }
            }

            if (c.Id.Length == 0 && ContentId(c) is { } content)
            {
                yield return "id:" + content;
            }
        }

        /// <summary>
        /// For a row with nothing to find it by (no id, external id or e-mail): an id from its name, phones and
        /// postcodes, so a second run of the same file finds the customer the first run created.
        /// </summary>
        private static string? ContentId(Customer c)
        {
            if (c.ExternalIds.Count > 0 || c.Emails.Count > 0 || string.IsNullOrWhiteSpace(c.Name))
            {
                return null;
            }

            var text = string.Join("\u0001", DuplicateKeys.NameKey(c.Name), string.Join(",", DuplicateKeys.Phones(c).Order(StringComparer.Ordinal)),
                string.Join(",", DuplicateKeys.PostalCodes(c).Order(StringComparer.Ordinal)), string.Join(",", DuplicateKeys.Cities(c).Order(StringComparer.Ordinal)));
            return "imp" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..29];
        }

        private (string Column, string Reason) Describe(Exception error)
        {
            if (error is ValidationException v && v.Errors.Count > 0)
            {
                var columns = v.Errors.Select(e => ColumnOf(e.Field)).Distinct().ToList();
                return (string.Join(" | ", columns), string.Join("; ", v.Errors.Select(e => $"{e.Field}: {e.Message}")));
            }

            return ("(row)", error.Message);
        }

        /// <summary>The CSV column that feeds a card field named in a validation error ("Emails[1]" → the e-mail column).</summary>
        private string ColumnOf(string cardField)
        {
            var top = cardField.Split('[', '.')[0];
            var sub = cardField.Contains('.', StringComparison.Ordinal) ? cardField[(cardField.LastIndexOf('.') + 1)..] : null;
            var match = Plan.FirstOrDefault(p =>
            {
                var f = p.Field.Name;
                return top.Equals("Contacts", StringComparison.OrdinalIgnoreCase)
                    ? f.StartsWith("contact", StringComparison.Ordinal) && (sub is null || f.EndsWith("." + sub, StringComparison.OrdinalIgnoreCase))
                    : top.Equals("Addresses", StringComparison.OrdinalIgnoreCase)
                        ? f.StartsWith("address", StringComparison.Ordinal)
                        : f.Equals(top, StringComparison.OrdinalIgnoreCase) || f.Equals("profile." + sub, StringComparison.OrdinalIgnoreCase)
                          || (top == "Custom" && f.StartsWith("custom.", StringComparison.Ordinal));
            });
            return match.Column ?? cardField;
        }

        private void Reject(long line, string[] record, string column, string reason)
        {
            Rejected++;
            if (FirstRejects.Count < KeptRejects)
            {
                FirstRejects.Add(new ImportReject(line, column, reason));
            }

            if (request.RejectPath is null)
            {
                return;
            }

            if (_rejects is null)
            {
                _rejects = CsvWriter.ToFile(request.RejectPath, new CsvWriterOptions { Separator = Delimiter[0], WriteByteOrderMark = true, ValidateFieldCount = false });
                _rejects.WriteRecord(["line", "column", "reason", .. Header]);
            }

            _rejects.WriteRecord([line.ToString(CultureInfo.InvariantCulture), column, reason, .. record]);
        }

        public void CloseRejects()
        {
            _rejects?.Dispose();
            _rejects = null;
        }
    }
}

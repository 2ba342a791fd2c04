using CrmEngine.Abstractions.Model;
using CrmEngine.Core.Storage;
using CrmEngine.DataExchange.Customers;
using CrmEngine.Security;
using CsvHelper;

namespace CrmEngine.DataExchange.Csv;

/// <summary>What an export wrote.</summary>
public sealed record ExportSummary(string File, long Customers, int Columns, TimeSpan Elapsed);

/// <summary>
/// Writes customers as CSV that <see cref="CustomerImporter"/> reads back: one column per field (header = field
/// names, or the mapping file's column names), lists joined by the list separator, as many address/contact column
/// groups as the largest card needs, one column per external system and per custom field (with its type).
/// Reads the store a page at a time (two passes: the shape, then the rows), so memory does not grow with the store.
/// </summary>
public sealed class CustomerExporter
{
    private const int Page = 1000;
    private readonly IStoreProvider _stores;

    internal CustomerExporter(IStoreProvider stores) => _stores = stores;

    public async Task<ExportSummary> ExportFileAsync(string path, string? mappingPath = null, CancellationToken cancellationToken = default,
        AccessContext? access = null)
    {
        var full = Path.GetFullPath(path);
        var partial = full + ".partial";
        ExportSummary summary;
        await using (var stream = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        {
            summary = await ExportAsync(stream, full, mappingPath, cancellationToken, access);
        }

        // Never leave half a file under the real name.
        File.Move(partial, full, overwrite: true);
        return summary;
    }

    /// <param name="access">
    /// The acting user: only customers their roles give <c>export</c> on are written, and columns of fields hidden from
    /// them are left out (not written empty). Null: the machine operator (every customer, every column).
    /// </param>
    public async Task<ExportSummary> ExportAsync(Stream output, string name, string? mappingPath = null, CancellationToken cancellationToken = default,
        AccessContext? access = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var store = _stores.ForActor(access is null ? "system:export" : "export:" + access.UserId);
        var filter = access?.Filter(EntityNames.Customer, Privilege.Export);
        if (filter is not null && CustomerAccess.RefusalOf(filter) is { } refused)
        {
            throw refused;
        }

        var hidden = access?.Fields(EntityNames.Customer).Hidden ?? new HashSet<string>();
        var mapping = mappingPath is null ? null : CustomerMapping.Load(mappingPath);
        var ctx = new ParseContext(mapping?.ListSeparator ?? "|");
        List<(string Header, CustomerField Field)> columns;
        if (mapping is not null)
        {
            columns = mapping.Columns.Select(c => (c.Column, c.Field)).ToList();
        }
        else
        {
            int addresses = 0, contacts = 0;
            var systems = new HashSet<string>(StringComparer.Ordinal);
            var custom = new Dictionary<string, CustomValueType>(StringComparer.Ordinal);
            await ForEachAsync(store.Customers, filter, c =>
            {
                addresses = Math.Max(addresses, c.Addresses.Count);
                contacts = Math.Max(contacts, c.Contacts.Count);
                systems.UnionWith(c.ExternalIds.Keys);
                foreach (var (k, v) in c.Custom)
                {
                    custom.TryAdd(k, v.Type);
                }
            }, cancellationToken);
            columns = CustomerFields.ExportColumns(addresses, contacts, systems, custom.Select(p => (p.Key, p.Value)))
                .Select(f => (f.Name, f)).ToList();
        }

        // A hidden field's column is absent: its name alone says nothing, but an empty column would look like "no value".
        columns = columns.Where(c => !hidden.Contains(c.Field.Name.Split('.')[0])).ToList();
        long count = 0;
        await using (var writer = CsvWriter.Create(output, new CsvWriterOptions { Separator = mapping?.Delimiter is { Length: 1 } d ? d[0] : ',', WriteByteOrderMark = true }, leaveOpen: true))
        {
            writer.WriteRecord(columns.Select(c => c.Header).ToArray());
            var row = new string[columns.Count];
            await ForEachAsync(store.Customers, filter, c =>
            {
                for (var i = 0; i < columns.Count; i++)
                {
                    row[i] = columns[i].Field.Format(c, ctx);
                }

                writer.WriteRecord(row);
                count++;
            }, cancellationToken);
        }

        return new ExportSummary(name, count, columns.Count, clock.Elapsed);
    }

    private static async Task ForEachAsync(Abstractions.Store.IEntitySet<Customer> set, QueryFilter? filter, Action<Customer> action, CancellationToken ct)
    {
        string? after = null;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var page = filter is null ? await set.ListAsync(Page, after, ct) : await VisibleRecords.PageAsync(set, filter, c => c.Owner, Page, after, ct);
            foreach (var c in page)
            {
                action(c);
            }

            if (page.Count < Page)
            {
                return;
            }

            after = page[^1].Id;
        }
    }
}

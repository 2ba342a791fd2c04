using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using CrmEngine.Rules.Scripting;
using CrmEngine.Rules.Segments;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace CrmEngine.Rules.Tests;

/// <summary>A real store on a real LiteDB file, a rules folder on disk, and the rule services over them.</summary>
internal sealed class TestWorld : IDisposable
{
    public TestWorld(RulesOptions? options = null)
    {
        Folder = Path.Combine(Path.GetTempPath(), "crm-rules-tests", Guid.NewGuid().ToString("N"));
        RulesFolder = Path.Combine(Folder, "rules");
        Directory.CreateDirectory(Path.Combine(RulesFolder, "segments"));
        Directory.CreateDirectory(Path.Combine(RulesFolder, "events"));
        Time = new FakeTimeProvider(new DateTimeOffset(2026, 6, 1, 9, 0, 0, TimeSpan.Zero));
        Options = options ?? new RulesOptions { Workers = 2, SegmentFailureThreshold = 3, ChangePollInterval = TimeSpan.FromMilliseconds(50) };
        Options.Directory = RulesFolder;
        Database = new CrmDatabase(new StoreOptions { DataDirectory = Folder, FileName = "crm.db" }, Time);
        Registry = new WriteHandlerRegistry();
        Pipeline = new WritePipeline(Database, Registry, new PipelineOptions { HandlerTimeout = TimeSpan.FromSeconds(10) }, () => []);
        Provider = new StoreProvider(Pipeline);
        Store = Provider.ForActor("user:alice");
        Engine = new JsRuleEngine(Options, Time);
        Catalog = new RuleCatalog(Engine, RulesFolder);
        Segments = new SegmentService(Engine, Catalog, Provider, Microsoft.Extensions.Options.Options.Create(Options), Time);
    }

    public string Folder { get; }
    public string RulesFolder { get; }
    public FakeTimeProvider Time { get; }
    public RulesOptions Options { get; }
    public CrmDatabase Database { get; }
    public WriteHandlerRegistry Registry { get; }
    public WritePipeline Pipeline { get; }
    public StoreProvider Provider { get; }
    public ICrmStore Store { get; }
    public JsRuleEngine Engine { get; }
    public RuleCatalog Catalog { get; }
    public SegmentService Segments { get; }

    public void WriteRule(string kind, string name, string code) =>
        File.WriteAllText(Path.Combine(RulesFolder, kind, name + ".js"), code);

    public Task<Customer> AddCustomerAsync(string name, Action<Customer>? edit = null)
    {
        var c = new Customer { Name = name };
        edit?.Invoke(c);
        return Store.Customers.CreateAsync(c);
    }

    public Task<Order> AddOrderAsync(string customerId, decimal amount, int daysAgo, OrderStatus status = OrderStatus.Paid) =>
        Store.Orders.CreateAsync(new Order
        {
            CustomerId = customerId,
            Status = status,
            OrderedAt = Time.GetUtcNow().AddDays(-daysAgo),
            Lines = [new OrderLine { Description = "item", Quantity = 1, UnitPrice = amount }],
        });

    public async Task<List<string>> MembersAsync(string segment)
    {
        var all = new List<string>();
        string? after = null;
        while (true)
        {
            var page = await Segments.MembersAsync(segment, 500, after);
            all.AddRange(page.Select(m => m.CustomerId));
            if (page.Count < 500)
            {
                return all;
            }

            after = page[^1].CustomerId;
        }
    }

    public async Task DrainAsync()
    {
        for (var i = 0; i < 100 && await Segments.ProcessChangesAsync() > 0; i++)
        {
        }
    }

    public void Dispose()
    {
        Segments.Dispose();
        Catalog.Dispose();
        Engine.Dispose();
        Database.Dispose();
        try
        {
            Directory.Delete(Folder, true);
        }
        catch (IOException)
        {
        }
    }
}

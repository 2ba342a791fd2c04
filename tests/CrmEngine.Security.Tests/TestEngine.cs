using CrmEngine.Abstractions.Store;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Security.Tests;

/// <summary>The real store (LiteDB file in a temp folder) with the access model on top.</summary>
internal sealed class TestEngine : IAsyncDisposable
{
    private readonly ServiceProvider _services;
    private readonly string _folder;

    public TestEngine()
    {
        _folder = Path.Combine(Path.GetTempPath(), "crm-security-tests", Guid.NewGuid().ToString("N")[..12]);
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Store:DataDirectory"] = _folder,
        }).Build();
        _services = new ServiceCollection().AddLogging().AddCrmCore(config).AddCrmSecurityWriteEnforcement().BuildServiceProvider();
    }

    public SecurityAdministration Security => _services.GetRequiredService<SecurityAdministration>();

    public OwnershipTransfer Transfer => _services.GetRequiredService<OwnershipTransfer>();

    public ICrmStore Store(string actor = "test") => _services.GetRequiredService<IStoreProvider>().ForActor(actor);

    /// <summary>Registers the write-path checks (hosted services are not started by this engine on their own).</summary>
    public Task EnforceWritesAsync() => _services.GetRequiredService<WriteEnforcement>().StartAsync(CancellationToken.None);

    public static string ShippedSeed => Path.Combine(AppContext.BaseDirectory, "security.json");

    public Task<SeedResult> SeedShippedAsync() => Security.SeedAsync(SeedFile.Load(ShippedSeed), "admin");

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
